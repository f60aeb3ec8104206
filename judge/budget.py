"""Per-experiment judge budget: requests, tokens and cost in sliding windows; over it, wait.

Over budget the worker defers the call (sleeps until the window has room); it never drops a
pair. The budget is per worker process: with N workers each gets the configured limits / N when
``share`` is set to N.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from judge.config import JudgeSettings

__all__ = ["Budget"]


@dataclass(slots=True)
class _Spend:
    at: float
    requests: int
    tokens: int
    cost: float


class Budget:
    """Sliding-window limits: requests and tokens per minute, cost per hour."""

    def __init__(self, settings: JudgeSettings, *, share: int = 1) -> None:
        self._rpm = settings.requests_per_minute / share if settings.requests_per_minute else None
        self._tpm = settings.tokens_per_minute / share if settings.tokens_per_minute else None
        self._cph = settings.cost_per_hour_usd / share if settings.cost_per_hour_usd else None
        self._spent: dict[str, deque[_Spend]] = {}
        self.deferrals = 0

    @property
    def limited(self) -> bool:
        return any(v is not None for v in (self._rpm, self._tpm, self._cph))

    def _wait_seconds(self, experiment: str, now: float) -> float:
        spent = self._spent.setdefault(experiment, deque())
        while spent and spent[0].at < now - 3600:
            spent.popleft()
        waits = [0.0]
        minute = [s for s in spent if s.at >= now - 60]
        if self._rpm is not None and sum(s.requests for s in minute) >= self._rpm:
            waits.append(minute[0].at + 60 - now)
        if self._tpm is not None and sum(s.tokens for s in minute) >= self._tpm:
            waits.append(minute[0].at + 60 - now)
        if self._cph is not None and spent and sum(s.cost for s in spent) >= self._cph:
            waits.append(spent[0].at + 3600 - now)
        return max(waits)

    async def acquire(self, experiment: str) -> None:
        """Wait until ``experiment`` may make one more judge call, then count it."""
        if not self.limited:
            return
        while (wait := self._wait_seconds(experiment, time.monotonic())) > 0:
            self.deferrals += 1
            await asyncio.sleep(min(wait, 1.0) + 0.001)
        self._spent[experiment].append(_Spend(time.monotonic(), 1, 0, 0.0))

    def record(self, experiment: str, tokens: int, cost: float) -> None:
        """Add a finished call's tokens and cost to the window."""
        if self.limited:
            self._spent.setdefault(experiment, deque()).append(
                _Spend(time.monotonic(), 0, tokens, cost)
            )
