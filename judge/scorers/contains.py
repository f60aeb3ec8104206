"""Contains: the normalized reference appears in the normalized answer as whole words.

For short key answers ("4", "Paris") that a model may wrap in a sentence: "2 + 2 = 4" contains
"4", while "14" does not. Accents are folded on both sides (Unicode NFKD without its combining
marks), so "Bogotá" contains the key "Bogota" and "Zürich" the key "Zurich": a key answer is
usually written in ASCII and a model may well spell the name as its language does.
"""

from __future__ import annotations

import unicodedata

from judge.scorers.base import ArmScorer
from judge.scorers.normalized import normalize

__all__ = ["ContainsScorer"]


def _fold(text: str) -> str:
    """``text`` without accents: NFKD splits "á" into "a" and a combining mark, which goes."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class ContainsScorer(ArmScorer):
    name = "contains"

    def score_text(self, text: str, reference: str) -> float:
        answer, key = normalize(_fold(text)), normalize(_fold(reference))
        if not key:
            return float(not answer)
        # normalize() leaves single spaces between words, so a whole-word run is a substring
        # between spaces: one linear-time search instead of comparing every window of words
        return float(f" {key} " in f" {answer} ")
