"""The scorer registry: name -> scorer. Names are what ``ExperimentConfig.scorers`` lists.

Programmatic scorers are always present; ``embedding_cosine`` needs an embedding function and
``pairwise`` an LLM judge, so each is registered only when given one.
"""

from __future__ import annotations

from judge.pairwise import PairwiseJudge
from judge.scorers.base import ScoreContext, Scored, Scorer, compare_arms
from judge.scorers.contains import ContainsScorer
from judge.scorers.embedding import Embedder, EmbeddingCosineScorer
from judge.scorers.exact import ExactScorer
from judge.scorers.json_fields import JsonFieldsScorer
from judge.scorers.llm import PairwiseScorer
from judge.scorers.normalized import NormalizedScorer
from judge.scorers.regex import RegexScorer
from judge.scorers.retrieval import RetrievalScorer
from judge.scorers.rouge import RougeLScorer

__all__ = [
    "AUTO",
    "Embedder",
    "Registry",
    "ScoreContext",
    "Scored",
    "Scorer",
    "build_registry",
    "compare_arms",
]

AUTO = "auto"

Registry = dict[str, Scorer]


def build_registry(
    *,
    judge: PairwiseJudge | None = None,
    embed: Embedder | None = None,
    embed_model: str = "custom",
    rubrics: dict[str, str] | None = None,
    regex_timeout_seconds: float = 1.0,
) -> Registry:
    """Every available scorer by name."""
    scorers: list[Scorer] = [
        ExactScorer(),
        NormalizedScorer(),
        ContainsScorer(),
        JsonFieldsScorer(),
        RegexScorer(timeout_seconds=regex_timeout_seconds),
        RougeLScorer(),
        RetrievalScorer(),
    ]
    if embed is not None:
        scorers.append(EmbeddingCosineScorer(embed, model=embed_model))
    if judge is not None:
        scorers.append(PairwiseScorer(judge, rubrics=rubrics))
    return {s.name: s for s in scorers}
