"""ROUGE-L F1 against the reference: longest common subsequence of lower-cased word tokens."""

from __future__ import annotations

import re

from judge.scorers.base import ArmScorer

__all__ = ["RougeLScorer", "lcs_length", "rouge_l"]

_TOKEN = re.compile(r"\w+")


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row of memory)."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1]."""
    c, r = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not c or not r:
        return float(c == r)
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


class RougeLScorer(ArmScorer):
    name = "rouge_l"

    def score_text(self, text: str, reference: str) -> float:
        return rouge_l(text, reference)
