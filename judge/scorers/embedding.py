"""Embedding cosine to the reference, with a pluggable embedding function.

``Embedder`` maps texts to vectors (the demo passes MiniLM; tests a hashing embedder). It may
be slow, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

from judge.scorers.base import ArmScorer, ScoreContext, Scored, compare_arms
from tunegate.records import Arm

__all__ = ["Embedder", "EmbeddingCosineScorer", "cosine"]

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise ValueError("cosine: vectors differ in length")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class EmbeddingCosineScorer(ArmScorer):
    name = "embedding_cosine"

    def __init__(self, embed: Embedder, *, model: str = "custom") -> None:
        self._embed = embed
        self.model = model

    def judge_version(self, ctx: ScoreContext) -> str:
        return f"{self.name}/{self.version}:{self.model}"

    def score_text(self, text: str, reference: str) -> float:
        ref, vec = self._embed([reference, text])
        return max(0.0, cosine(ref, vec))

    async def score(self, ctx: ScoreContext) -> Scored:
        texts = [ctx.reference or "", ctx.text(Arm.CANDIDATE), ctx.text(Arm.CONTROL)]
        ref, cand, ctrl = await asyncio.to_thread(self._embed, texts)
        return compare_arms(max(0.0, cosine(ref, cand)), max(0.0, cosine(ref, ctrl)))
