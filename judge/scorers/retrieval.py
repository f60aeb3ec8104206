"""Retrieval scorer for embeddings pairs: which arm ranks the labelled relevant document higher.

Convention: the request's ``input`` is ``[query, doc_0, doc_1, …]``, the pair has the label
``task=retrieval`` and its reference is the relevant document's index. Each arm's score is the
reciprocal rank of that document by cosine to the query; the better rank wins, equal is a tie.
"""

from __future__ import annotations

from judge.scorers.base import ScoreContext, Scored, compare_arms
from judge.scorers.embedding import cosine
from tunegate.errors import RecordError
from tunegate.responses import ParsedResponse

__all__ = ["RetrievalScorer", "reciprocal_rank"]


def reciprocal_rank(vectors: list[list[float]], relevant: int) -> float:
    """1 / rank of document ``relevant`` (0-based among vectors[1:]) by cosine to vectors[0]."""
    query, docs = vectors[0], vectors[1:]
    if not 0 <= relevant < len(docs):
        raise RecordError(f"retrieval: relevant index {relevant} outside {len(docs)} documents")
    sims = [cosine(query, doc) for doc in docs]
    rank = 1 + sum(1 for i, s in enumerate(sims) if s > sims[relevant] and i != relevant)
    return 1.0 / rank


class RetrievalScorer:
    name = "retrieval"
    version = 1

    def applies(self, ctx: ScoreContext) -> bool:
        return ctx.is_retrieval and (ctx.pair.reference or "").strip().isdigit()

    def judge_version(self, ctx: ScoreContext) -> str:
        return f"{self.name}/{self.version}"

    async def score(self, ctx: ScoreContext) -> Scored:
        relevant = int((ctx.pair.reference or "").strip())
        return compare_arms(self._arm(ctx.candidate, relevant), self._arm(ctx.control, relevant))

    @staticmethod
    def _arm(parsed: ParsedResponse | None, relevant: int) -> float:
        if parsed is None or len(parsed.embeddings) < 2:
            raise RecordError("retrieval: an arm returned fewer than two embeddings")
        return reciprocal_rank(parsed.embeddings, relevant)
