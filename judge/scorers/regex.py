"""Regex scorer: the reference is a pattern; an arm scores 1 when it matches its text."""

from __future__ import annotations

import re

from judge.scorers.base import ArmScorer, ScoreContext

__all__ = ["RegexScorer"]


class RegexScorer(ArmScorer):
    name = "regex"

    def applies(self, ctx: ScoreContext) -> bool:
        if not super().applies(ctx):
            return False
        try:
            re.compile(ctx.pair.reference or "")
        except re.error:
            return False
        return True

    def score_text(self, text: str, reference: str) -> float:
        return float(re.search(reference, text, re.DOTALL) is not None)
