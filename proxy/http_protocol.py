"""uvicorn's httptools protocol with a response's head and first body part sent in one write.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start`` and
the body on ``http.response.body``: two ``send`` syscalls per whole response. py-spy put them at
5-14 % of the single worker's CPU under load. Here the head is held until the next write (the
body, sent in the same event-loop step by proxy/asgi.py's ``send_response``) and goes out with
it; if no write follows within the loop step (a stream waiting for its first chunk), it is
flushed by itself on the next iteration, so nothing waits on the upstream.

Use: ``uvicorn.run(app, http=http_protocol())`` (falls back to "h11" without httptools).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

__all__ = ["http_protocol"]


class _HeadWithBody:
    """A connection's transport as the request cycle sees it: the first write is held briefly."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def hold_next(self) -> None:
        """A new response begins: its first write (the head) waits for the body."""
        if self._held is None:  # (a head still held for a pipelined request keeps its place)
            self._held = b""

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._transport.write(data)
        elif held:
            self._held = None
            self._transport.write(held + data)
        else:
            self._held = data
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held:
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def http_protocol() -> type[asyncio.Protocol] | str:
    """The protocol class for ``uvicorn.run(http=...)``; "h11" when httptools is missing."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        _writer: _HeadWithBody | None = None

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is None or cycle.transport is not self.transport:
                return  # an upgrade, or a cycle that is not ours to change
            writer = self._writer
            if writer is None or writer._transport is not self.transport:
                writer = self._writer = _HeadWithBody(self.transport, self.loop)
            writer.hold_next()
            cycle.transport = writer  # type: ignore[assignment]

    return CoalescingHttpToolsProtocol
