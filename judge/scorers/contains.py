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
        answer, key = normalize(text), normalize(reference)
        if not key:
            return float(not answer)
        # normalize() leaves single spaces between words, so a whole-word run is a substring
        # between spaces: one linear-time search instead of comparing every window of words
        return float(f" {key} " in f" {answer} ")
