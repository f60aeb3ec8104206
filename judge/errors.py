"""The judge plane's error tree.

JudgeError
├── RetryableJudgeError   late: 429, 5xx, timeouts, connection errors. The pair waits (Retry-After
│                         honoured, capped backoff) and stays pending; it is never dead-lettered
└── PermanentJudgeError   wrong: other 4xx; the pair is dead-lettered with the reason
    └── ParseFailure      an answer without a recognisable verdict, or a body that is not a
                          chat completion: asked again ``max_retries`` times, then
                          dead-lettered (never a tie)
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
    """The judge said "later" (rate limit, outage, timeout); ``retry_after`` is its hint, if any."""

    reason = "judge_unavailable"

    def __init__(
        self,
        message: str,
        *,
        raw: str = "",
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, raw=raw, reason=reason)
        self.retry_after = retry_after


class PermanentJudgeError(JudgeError):
    """A failure that retrying will not fix; the pair goes to the dead-letter stream."""

    reason = "judge_rejected"


class ParseFailure(PermanentJudgeError):
    """The judge answered, but no verdict label could be read from the answer."""

    reason = "parse_failure"
