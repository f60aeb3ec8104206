"""Exact match against the reference (surrounding whitespace ignored)."""

from __future__ import annotations

from judge.scorers.base import ArmScorer

__all__ = ["ExactScorer"]


class ExactScorer(ArmScorer):
    name = "exact"

    def score_text(self, text: str, reference: str) -> float:
        return float(text.strip() == reference.strip())
