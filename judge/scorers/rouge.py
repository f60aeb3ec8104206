"""ROUGE-L F1 against the reference, as Google's ``rouge-score`` computes it.

Tokens are ``rouge_score``'s own (lower-cased ``[a-z0-9]+`` runs, no stemming, the
``RougeScorer(["rougeL"])`` default); the longest common subsequence comes from ``rapidfuzz``
(bit-parallel C++, O(n·m/64)) instead of ``rouge_score``'s pure-Python O(n·m) table, which takes
seconds per arm at a few thousand tokens. The tests check equality with ``RougeScorer`` itself.
"""

from __future__ import annotations

from rapidfuzz.distance import LCSseq
from rouge_score.tokenize import tokenize

from judge.scorers.base import ArmScorer

__all__ = ["RougeLScorer", "lcs_length", "rouge_l", "tokens"]


def tokens(text: str) -> list[str]:
    """``rouge_score``'s tokens of ``text`` (no stemmer)."""
    return list(tokenize(text, None))


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    return int(LCSseq.similarity(a, b))


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1]; 0 when either side has no tokens (as ``rouge_score``)."""
    c, r = tokens(candidate), tokens(reference)
    if not c or not r:
        return 0.0
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


class RougeLScorer(ArmScorer):
    name = "rouge_l"
    version = 2  # 1 was a hand-written LCS over \w+ tokens, which scored differently

    def score_text(self, text: str, reference: str) -> float:
        return rouge_l(text, reference)
