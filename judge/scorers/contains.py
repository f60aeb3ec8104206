"""Contains: the normalized reference appears in the normalized answer as whole words.

For short key answers ("4", "Paris") that a model may wrap in a sentence: "2 + 2 = 4" contains
"4", while "14" does not.
"""

from __future__ import annotations

from judge.scorers.base import ArmScorer
from judge.scorers.normalized import normalize

__all__ = ["ContainsScorer"]


class ContainsScorer(ArmScorer):
    name = "contains"

    def score_text(self, text: str, reference: str) -> float:
        answer, key = normalize(text).split(), normalize(reference).split()
        if not key:
            return float(not answer)
        width = len(key)
        return float(any(answer[i : i + width] == key for i in range(len(answer) - width + 1)))
