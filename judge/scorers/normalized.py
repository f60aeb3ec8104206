"""Normalized match: case, punctuation, articles and whitespace ignored (SQuAD-style)."""

from __future__ import annotations

import re
import string

from judge.scorers.base import ArmScorer

__all__ = ["NormalizedScorer", "normalize"]

_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


class NormalizedScorer(ArmScorer):
    name = "normalized"

    def score_text(self, text: str, reference: str) -> float:
        return float(normalize(text) == normalize(reference))
