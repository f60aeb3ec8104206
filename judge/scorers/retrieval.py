"""Retrieval scorer for embeddings pairs: which arm ranks the labelled relevant document higher.

Convention: the request's ``input`` is ``[query, doc_0, doc_1, …]``, the pair has the label
``task=retrieval`` and its reference is the relevant document's index. Each arm's score is the
reciprocal rank of that document by cosine to the query; the better rank wins, equal is a tie.
The cosines are one numpy product per arm, in a worker thread.
"""

from __future__ import annotations

import asyncio

import numpy as np

from judge.scorers.base import ScoreContext, Scored, compare_arms
from tunegate.errors import RecordError
from tunegate.responses import ParsedResponse

__all__ = ["RetrievalScorer", "reciprocal_rank"]


def reciprocal_rank(vectors: list[list[float]], relevant: int) -> float:
    """1 / rank of document ``relevant`` (0-based among vectors[1:]) by cosine to vectors[0]."""
    if not 0 <= relevant < len(vectors) - 1:
        raise RecordError(
            f"retrieval: relevant index {relevant} outside {len(vectors) - 1} documents"
        )
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except ValueError as exc:
        raise RecordError("retrieval: embeddings differ in length") from exc
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0  # a zero vector has cosine 0 to everything
    unit = matrix / norms[:, None]
    sims = unit[1:] @ unit[0]
    rank = 1 + int(np.count_nonzero(sims > sims[relevant]))
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
        return await asyncio.to_thread(self._both, ctx.candidate, ctx.control, relevant)

    def _both(
        self, candidate: ParsedResponse | None, control: ParsedResponse | None, relevant: int
    ) -> Scored:
        return compare_arms(self._arm(candidate, relevant), self._arm(control, relevant))

    @staticmethod
    def _arm(parsed: ParsedResponse | None, relevant: int) -> float:
        if parsed is None or len(parsed.embeddings) < 2:
            raise RecordError("retrieval: an arm returned fewer than two embeddings")
        return reciprocal_rank(parsed.embeddings, relevant)
