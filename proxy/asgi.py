"""Raw ASGI plumbing for the hot path: read a bounded body, send a whole response, watch for a
client disconnect. No framework objects are built per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from proxy.errors import BadRequest, PayloadTooLarge, ProxyError

__all__ = [
    "PAIR_ID_HEADER",
    "DisconnectGuard",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "send_error",
    "send_response",
    "start_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Response header carrying the pair id of an experiment request.
PAIR_ID_HEADER = b"x-tunegate-pair-id"


async def read_body(receive: Receive, content_length: str | None, limit: int) -> bytes:
    """The whole request body; PayloadTooLarge as soon as it exceeds ``limit`` bytes.

    A declared length over the limit is refused before any body byte is read; a chunked body
    as soon as the bytes received so far exceed it (the HTTP layer has already checked framing).
    """
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
    message = await receive()
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
    if not message.get("more_body", False):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("client disconnected while sending the body")
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


async def start_response(
    send: Send,
    status: int,
    content_type: bytes,
    extra: Iterable[tuple[bytes, bytes]] = (),
    content_length: int | None = None,
) -> None:
    headers = [(b"content-type", content_type), *extra]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """One complete response with a content length."""
    await start_response(send, status, content_type, extra, len(body))
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(
    send: Send, exc: ProxyError, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """The OpenAI error body for ``exc`` with its status (and Retry-After when overloaded)."""
    headers = [*extra, *exc.headers]
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    content_type = getattr(exc, "content_type", "application/json")
    await send_response(send, exc.status, exc.body(), str(content_type).encode(), headers)


class DisconnectGuard:
    """Cancels the request's task when the client goes away before the response is complete.

    ASGI reports a disconnect only through ``receive``, so a watcher task must wait on it. Most
    answers are back within ``WATCH_AFTER_S``; the watcher starts only after that (a timer is far
    cheaper than a task per request), so a disconnect is noticed at most that much later.
    ``close`` (before the last body message) stops watching.
    """

    WATCH_AFTER_S = 0.05

    __slots__ = ("_finished", "_owner", "_receive", "_timer", "_watcher", "disconnected")

    def __init__(self, receive: Receive) -> None:
        self._owner = asyncio.current_task()
        self._receive = receive
        self._finished = False
        self.disconnected = False
        self._watcher: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(self.WATCH_AFTER_S, self._start)

    def _start(self) -> None:
        if not self._finished:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self._finished:
            self.disconnected = True
            if self._owner is not None:
                self._owner.cancel()

    def close(self) -> None:
        self._finished = True
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
