"""Regex scorer: the reference is a pattern; an arm scores 1 when it matches its text.

The pattern comes with the pair, so it may backtrack catastrophically: it is searched with the
``regex`` package, whose ``timeout`` stops a search that runs past ``timeout_seconds``; such a
pair is dead-lettered (``scorer_timeout``) rather than holding a worker thread. Compiling is not
under that timeout, so a reference longer than ``MAX_PATTERN_CHARS`` is not taken as a pattern.
"""

from __future__ import annotations

import regex

from judge.errors import PermanentJudgeError
from judge.scorers.base import ArmScorer, ScoreContext

__all__ = ["MAX_PATTERN_CHARS", "RegexScorer"]

MAX_PATTERN_CHARS = 4096


class RegexScorer(ArmScorer):
    name = "regex"

    def __init__(self, *, timeout_seconds: float = 1.0) -> None:
        self.timeout_seconds = timeout_seconds

    def applies(self, ctx: ScoreContext) -> bool:
        if not super().applies(ctx) or len(ctx.reference or "") > MAX_PATTERN_CHARS:
            return False
        try:
            regex.compile(ctx.reference or "")
        except regex.error:
            return False
        return True

    def score_text(self, text: str, reference: str) -> float:
        try:
            found = regex.search(reference, text, regex.DOTALL, timeout=self.timeout_seconds)
        except TimeoutError as exc:
            raise PermanentJudgeError(
                f"regex: the reference pattern ran past {self.timeout_seconds} s",
                reason="scorer_timeout",
            ) from exc
        return float(found is not None)
