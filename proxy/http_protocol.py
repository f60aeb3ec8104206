"""The proxy's HTTP server protocol: uvicorn's httptools one, hardened and with coalesced writes.

Hardening (the limits are ``proxy.edge``, proxy/config.py EdgeSettings): uvicorn's httptools
protocol bounds neither a request head nor the time a client takes to send it, so one slow or
huge request could hold a connection and its memory forever. This subclass refuses, each with
an OpenAI-shaped error body and ``connection: close``:

- a head (request line and headers) over ``max_head_bytes`` or with more than ``max_headers``
  headers: 431;
- a head not complete ``head_timeout_seconds`` after the connection opened or the request's
  first byte arrived, or a body not complete ``body_timeout_seconds`` after its head: 408
  (slow-loris);
- anything the parser refuses (control bytes, bad framing, lying or duplicate Content-Length,
  a non-ASCII target): 400 (uvicorn answers those in text/plain);
- a connection past ``max_connections``: the oldest idle connection (none or no request on it)
  is closed for the new one; with none idle the new one gets 503. Idle keep-alive connections
  close after ``keepalive_timeout_seconds`` (uvicorn's ``timeout_keep_alive``).

Coalesced writes: uvicorn writes the status line and headers as soon as the app sends
``http.response.start`` and the body on ``http.response.body``: two ``send`` syscalls per whole
response. py-spy put them at 5-14 % of the single worker's CPU under load. Here the head is held
until the next write (the body, sent in the same event-loop step by proxy/asgi.py's
``send_response``) and goes out with it; if no write follows within the loop step (a stream
waiting for its first chunk), it is flushed by itself on the next iteration.

Why a subclass of a private class: uvicorn has no hooks for these. pyproject.toml pins uvicorn
to the minor version this was written against, and tests/proxy/test_http_protocol.py fails
loudly when the methods overridden or relied on here change.

Use: ``uvicorn.run(app, http=http_protocol(settings.edge))`` ("h11" without httptools, which then
has only uvicorn's own limits).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections import OrderedDict
from http import HTTPStatus
from typing import Any

from proxy.config import EdgeSettings
from proxy.errors import ProxyError

__all__ = ["PROTOCOL_ATTRIBUTES", "HeadWithBody", "http_protocol", "refusal"]

#: What this module relies on in uvicorn's HttpToolsProtocol (checked by a test).
PROTOCOL_ATTRIBUTES = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "send_400_response",
    "_unset_keepalive_if_required",
    "_should_upgrade",
    "handle_websocket_upgrade",
    "_unsupported_upgrade_warning",
)


def refusal(exc: ProxyError) -> bytes:
    """A whole HTTP/1.1 response with ``exc``'s OpenAI error body that closes the connection."""
    body = exc.body()
    reason = HTTPStatus(exc.status).phrase.encode()
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (exc.status, reason),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


class HeadWithBody:
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


def http_protocol(edge: EdgeSettings | None = None) -> type[asyncio.Protocol] | str:
    """The protocol class for ``uvicorn.run(http=...)``; "h11" when httptools is missing.

    One class per call: its connections share the ``max_connections`` bookkeeping.
    """
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from proxy.http_hardened import HardenedHttpToolsProtocol

    limits = edge if edge is not None else EdgeSettings()
    attributes = {
        "limits": limits,
        "_max_head_bytes": limits.max_head_bytes,
        "_max_headers": limits.max_headers,
        "idle": OrderedDict(),
    }
    return type("HardenedHttpToolsProtocol", (HardenedHttpToolsProtocol,), attributes)
