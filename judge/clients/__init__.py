"""Judge clients: one chat call to an LLM judge, over HTTP or in-process.

Both implement :class:`JudgeClient`; failures raise the judge error tree
(``RetryableJudgeError`` for 429/5xx/timeouts, ``PermanentJudgeError`` for other 4xx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["JudgeClient", "JudgeReply"]


@dataclass(slots=True)
class JudgeReply:
    """The judge's raw answer, its token counts and (optionally) the log-probabilities of labels."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    label_logprobs: dict[str, float] = field(default_factory=dict)


class JudgeClient(Protocol):
    """One LLM judge. Long-lived: used as ``async with`` and closed by ``aclose()``."""

    model: str

    async def complete(self, messages: list[dict[str, str]]) -> JudgeReply:
        """One judge call for the rendered ``messages``."""
        ...

    async def aclose(self) -> None: ...
