"""SSE relay: forward whole events to the client, and keep the raw event text (bounded) with
the timing of each chunk as it arrives.

The relay loop lives in the caller (served leg: :class:`EventRelay` to the client, then
:meth:`StreamCapture.feed`; shadow leg: only ``feed``). :class:`EventRelay` forwards only whole
events (up to the last blank line; the rest waits for the next chunk), so when the upstream dies
mid-stream the client gets no half event but an error event in OpenAI's shape
(``data: {"error": {...}}``), on which the ``openai`` SDK (sync and async) raises ``APIError``:
a truncated answer is never mistaken for a complete one.
"""

from __future__ import annotations

import time

from proxy.asgi import Send
from proxy.errors import ProxyError

__all__ = ["EventRelay", "StreamCapture"]

#: A partial event held back longer than this is forwarded anyway (not an SSE stream we follow).
_MAX_HELD = 64 * 1024


def _event_end(data: bytes) -> int:
    """The offset just past the last complete SSE event in ``data`` (0: none)."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


class EventRelay:
    """Sends an SSE body to the client one whole event (or more) at a time."""

    __slots__ = ("_held", "_send")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._held = b""

    async def forward(self, chunk: bytes) -> None:
        data = self._held + chunk if self._held else chunk
        if data.endswith(b"\n\n"):  # the usual case: the chunk ends an event
            end = len(data)
        else:
            end = _event_end(data)
            if len(data) - end > _MAX_HELD:
                end = len(data)
        self._held = data[end:]
        if end:
            await self._send({"type": "http.response.body", "body": data[:end], "more_body": True})

    async def finish(self) -> None:
        """The upstream ended the stream: forward what is held and end the body."""
        held, self._held = self._held, b""
        await self._send({"type": "http.response.body", "body": held, "more_body": False})

    async def fail(self, exc: ProxyError) -> None:
        """The upstream failed mid-stream: drop the partial event, end with an error event."""
        self._held = b""
        event = b"data: " + exc.body() + b"\n\n"
        await self._send({"type": "http.response.body", "body": event, "more_body": False})


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
