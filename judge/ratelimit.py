"""RateLimitGate: when the judge says "later", every call waits as long as it said, then one probes.

A provider that answers 429 (or 5xx, or times out) is asked again only after the time its
``Retry-After`` names (capped at ``retry_after_max_seconds``), or after a capped exponential
backoff with jitter when it names none. While the gate is limited, one call at a time goes (the
probe); the others wait behind it, so an outage of T seconds costs about T / Retry-After
calls per worker, not per pair. Nothing gives up: the pairs stay pending with their worker
until the judge answers, and ``limited_seconds`` says for how long it has not.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from judge.errors import RetryableJudgeError

__all__ = ["RateLimitGate", "retry_after_seconds"]

T = TypeVar("T")


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or an
    HTTP date); None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimitGate:
    """The shared wait of one judge endpoint; ``run`` retries a call until it is not "later"."""

    def __init__(
        self,
        *,
        backoff_base_seconds: float,
        backoff_max_seconds: float,
        retry_after_max_seconds: float,
        on_later: Callable[[RetryableJudgeError], None] | None = None,
    ) -> None:
        self._base = backoff_base_seconds
        self._cap = backoff_max_seconds
        self._retry_after_cap = retry_after_max_seconds
        self._on_later = on_later
        self._open_at = 0.0  # monotonic time before which no call goes
        self._streak = 0  # "later" answers since the last answer
        self._since: float | None = None  # monotonic start of the streak
        self._probe = asyncio.Lock()
        self.waits = 0  # calls that waited, for tests and the heartbeat

    @property
    def limited(self) -> bool:
        return self._streak > 0

    @property
    def limited_seconds(self) -> float:
        """How long the judge has been answering "later" (0 when its last answer was an answer)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def delay(self, exc: RetryableJudgeError) -> float:
        """Wait before the next call: the Retry-After (capped, up to 10 % later so that workers
        do not retry in step), else exponential backoff with jitter, capped."""
        if exc.retry_after is not None:
            return min(exc.retry_after, self._retry_after_cap) * random.uniform(1.0, 1.1)
        backoff = self._base * 2 ** (self._streak - 1) * random.uniform(0.5, 1.5)
        return float(min(backoff, self._cap))

    async def _enter(self) -> bool:
        """Wait until a call may go; True when it goes as the probe (holding the lock)."""
        while True:
            wait = self._open_at - time.monotonic()
            if wait > 0:
                self.waits += 1
                await asyncio.sleep(wait)
                continue
            if not self.limited:
                return False
            await self._probe.acquire()
            if self.limited and self._open_at <= time.monotonic():
                return True
            self._probe.release()  # the probe before us answered, or was told to wait again

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` once the gate allows; again after each ``RetryableJudgeError``, forever."""
        while True:
            probing = await self._enter()
            try:
                result = await call()
            except RetryableJudgeError as exc:
                self._streak += 1
                if self._since is None:
                    self._since = time.monotonic()
                self._open_at = max(self._open_at, time.monotonic() + self.delay(exc))
                if self._on_later is not None:
                    self._on_later(exc)
                continue
            except Exception:  # an answer, if a wrong one (4xx, a body that is no completion)
                self._streak, self._since = 0, None
                raise
            else:
                self._streak, self._since = 0, None
                return result
            finally:
                if probing:
                    self._probe.release()
