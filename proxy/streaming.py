"""SSE relay bookkeeping: keep the raw event text (bounded) and time each chunk as it arrives.

The relay itself is a loop in the caller (served leg: chunk to the client, then :meth:`feed`;
shadow leg: only :meth:`feed`); this class records what the pair needs from it: the text, time
to the first chunk and the inter-chunk gaps.
"""

from __future__ import annotations

import time

__all__ = ["StreamCapture"]


class StreamCapture:
    """Collects up to ``max_bytes`` of a streamed body and its chunk timings."""

    __slots__ = (
        "_chunks",
        "_count",
        "_gap_max",
        "_gap_sum",
        "_last",
        "_size",
        "first_at",
        "max_bytes",
        "started_at",
        "truncated",
    )

    def __init__(self, max_bytes: int, started_at: float | None = None) -> None:
        self.max_bytes = max_bytes
        self.started_at = time.perf_counter() if started_at is None else started_at
        self.first_at: float | None = None
        self.truncated = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._last = 0.0
        self._count = 0
        self._gap_sum = 0.0
        self._gap_max = 0.0

    def feed(self, chunk: bytes, now: float | None = None) -> None:
        """Record one chunk as it arrived."""
        if not chunk:
            return
        now = time.perf_counter() if now is None else now
        if self.first_at is None:
            self.first_at = now
        else:
            gap = now - self._last
            self._gap_sum += gap
            self._gap_max = max(self._gap_max, gap)
            self._count += 1
        self._last = now
        room = self.max_bytes - self._size
        if room <= 0:
            self.truncated = True
            return
        if len(chunk) > room:
            chunk = chunk[:room]
            self.truncated = True
        self._chunks.append(chunk)
        self._size += len(chunk)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_at is None else self.first_at - self.started_at

    @property
    def itl_mean_s(self) -> float | None:
        return self._gap_sum / self._count if self._count else None

    @property
    def itl_max_s(self) -> float | None:
        return self._gap_max if self._count else None
