"""The judge plane's error tree.

JudgeError
├── RetryableJudgeError   429, 5xx, timeouts, connection errors: retried with backoff and jitter
└── PermanentJudgeError   other 4xx, or still failing after the retries: the pair is dead-lettered
    └── ParseFailure      judge output without a recognisable verdict (never turned into a tie)
"""

from __future__ import annotations

from tunegate.errors import TunegateError

__all__ = ["JudgeError", "ParseFailure", "PermanentJudgeError", "RetryableJudgeError"]


class JudgeError(TunegateError):
    """Base of the judge errors; ``reason`` is a bounded label for metrics and dead letters."""

    reason = "judge_error"

    def __init__(self, message: str, *, raw: str = "", reason: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        if reason is not None:
            self.reason = reason


class RetryableJudgeError(JudgeError):
    """A failure worth retrying: rate limit, server error, timeout, connection reset."""

    reason = "judge_unavailable"


class PermanentJudgeError(JudgeError):
    """A failure that retrying will not fix; the pair goes to the dead-letter stream."""

    reason = "judge_rejected"


class ParseFailure(PermanentJudgeError):
    """The judge answered, but no verdict label could be read from the answer."""

    reason = "parse_failure"
