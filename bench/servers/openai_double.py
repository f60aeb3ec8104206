"""An OpenAI-compatible ASGI double whose replies, delays, statuses, hangs and output tests set.

Usage::

    double = OpenAIDouble("control")               # replies "Hello from control." by default
    with serve_in_thread(double.app) as url:       # base_url for clients: f"{url}/v1"
        double.script(Reply(text="scripted"))      # every model from now on
        double.script(Reply(status=500), model="m") # only requests for model "m"
        double.script(Reply(hang=True))            # never answers until double.reset()
        ...
        double.received                            # list[Received]: path, headers, json body
        double.wait_for(2)                         # block until 2 requests arrived (deadline)
        double.reset()                             # default reply, release hangs, clear log

Endpoints: POST /v1/chat/completions and /v1/completions (JSON, or SSE with ``stream: true``,
honouring ``n``, tool calls and ``stream_options.include_usage``), POST /v1/embeddings
(deterministic vectors from the input text, or scripted ones), GET /v1/models; any other path
answers 200 with ``{"double": name, "path": ..., "method": ...}`` (for passthrough tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.servers.asgi import read_body

__all__ = ["OpenAIDouble", "Received", "Reply", "fake_embedding"]


@dataclass
class Reply:
    """What the double answers; every field is optional."""

    text: str | None = None  # None: "Hello from <name>."
    status: int = 200
    error_body: bytes | None = None  # body for an error status; default: OpenAI error JSON
    delay_s: float = 0.0  # before the status line
    hang: bool = False  # never answer (until reset() or the client gives up)
    chunks: list[str] | None = None  # streamed pieces; default: the text split after spaces
    chunk_delay_s: float = 0.0  # between streamed pieces
    tool_calls: list[dict[str, Any]] | None = None  # e.g. [{"id", "type", "function": {...}}]
    malformed: bool = False  # status 200 with a body that is not valid JSON / SSE
    die_after: int | None = None  # streams: drop the connection after this many pieces
    embeddings: list[list[float]] | None = None
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    )


@dataclass
class Received:
    """One request as the double saw it."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    time: float

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        assert isinstance(value, dict)
        return value


def fake_embedding(text: str, dim: int = 8) -> list[float]:
    """A deterministic unit-free vector for ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128 for b in digest[:dim]]


class OpenAIDouble:
    """A scriptable OpenAI-compatible server (pure ASGI; run it with serve_in_thread)."""

    def __init__(self, name: str = "double", *, record: bool = True) -> None:
        self.name = name
        self.record = record  # False: keep no log of requests (long benchmark runs)
        self.received: list[Received] = []
        self._default = Reply()
        self._by_model: dict[str, Reply] = {}
        self._hangs: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._lock = threading.Lock()
        self.headers: list[tuple[str, str]] = []  # extra response headers on every answer

    # -- control (called from the test thread) --------------------------------------------------
    def script(self, reply: Reply, *, model: str | None = None) -> None:
        """Answer ``reply`` to every request (or only to requests for ``model``)."""
        with self._lock:
            if model is None:
                self._default = reply
            else:
                self._by_model[model] = reply

    def reset(self) -> None:
        """Default replies, release hanging requests, forget what was received."""
        with self._lock:
            self._default = Reply()
            self._by_model.clear()
            self.received.clear()
            self.headers = []
            hangs, self._hangs = self._hangs, []
        for loop, event in hangs:  # released on the server's own loop, no thread per hang
            loop.call_soon_threadsafe(event.set)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until ``count`` requests arrived; AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {len(self.received)} of {count} requests")
            time.sleep(0.005)
        return list(self.received)

    def _reply_for(self, model: str | None) -> Reply:
        with self._lock:
            return self._by_model.get(model or "", self._default)

    # -- ASGI -----------------------------------------------------------------------------------
    @property
    def app(self) -> OpenAIDouble:
        """The ASGI app (the double itself; uvicorn needs an async ``__call__``)."""
        return self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        raw = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if self.record:
            self.received.append(
                Received(scope["method"], scope["path"], headers, raw, time.time())
            )
        await self._answer(scope["path"], raw, send)

    async def _answer(self, path: str, raw: bytes, send: Any) -> None:
        body: dict[str, Any] = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                await self._send(send, 400, _error("double: body is not JSON"))
                return
        reply = self._reply_for(body.get("model"))
        if reply.hang:
            event = asyncio.Event()
            with self._lock:
                self._hangs.append((asyncio.get_running_loop(), event))
            await event.wait()  # set by reset(), from the test thread
            await self._send(send, 503, _error("double: released from a hang"))
            return
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status >= 400:
            await self._send(send, reply.status, reply.error_body or _error("scripted failure"))
            return
        if path == "/v1/models":
            await self._send(send, 200, json.dumps({"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": self.name}
                for m in ["double-model", *self._by_model]
            ]}).encode())  # fmt: skip
            return
        if path in ("/v1/chat/completions", "/v1/completions"):
            chat = path == "/v1/chat/completions"
            if body.get("stream"):
                await self._stream(send, reply, body, chat)
            else:
                payload = b'{"choices": [' if reply.malformed else self._whole(reply, body, chat)
                await self._send(send, 200, payload)
            return
        if path == "/v1/embeddings":
            await self._send(send, 200, self._embeddings(reply, body))
            return
        await self._send(send, 200, json.dumps({"double": self.name, "path": path}).encode())

    def _extra(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode(), v.encode()) for k, v in self.headers]

    async def _send(self, send: Any, status: int, body: bytes) -> None:
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()), *self._extra()],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _text(self, reply: Reply) -> str:
        return reply.text if reply.text is not None else f"Hello from {self.name}."

    def _whole(self, reply: Reply, body: dict[str, Any], chat: bool) -> bytes:
        choices = []
        for i in range(int(body.get("n") or 1)):
            finish = "tool_calls" if reply.tool_calls else "stop"
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": self._text(reply)}
                if reply.tool_calls:
                    message["tool_calls"] = reply.tool_calls
                choices.append({"index": i, "message": message, "finish_reason": finish})
            else:
                choices.append({"index": i, "text": self._text(reply), "finish_reason": finish})
        return json.dumps({
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{self.name}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "double-model"),
            "choices": choices,
            "usage": reply.usage,
        }).encode()  # fmt: skip

    async def _stream(self, send: Any, reply: Reply, body: dict[str, Any], chat: bool) -> None:
        headers = [(b"content-type", b"text/event-stream"), *self._extra()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if reply.malformed:
            await _event(send, b"data: {not json\n\n", more=False)
            return
        text = self._text(reply)
        pieces = reply.chunks if reply.chunks is not None else _split(text)
        base = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{self.name}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "double-model"),
        }
        n = int(body.get("n") or 1)
        for k, piece in enumerate(pieces):
            if k and reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
            if k == reply.die_after:
                return  # no final chunk: the server drops the connection mid-body
            for i in range(n):
                delta: dict[str, Any] = {"content": piece} if chat else {}
                if chat and k == 0:
                    delta["role"] = "assistant"
                choice = {"index": i, "delta": delta} if chat else {"index": i, "text": piece}
                await _event(send, _data({**base, "choices": [{**choice, "finish_reason": None}]}))
        if chat and reply.tool_calls:
            for j, call in enumerate(reply.tool_calls):
                fn = call["function"]
                args = fn.get("arguments", "")
                half = len(args) // 2
                first = {"index": j, "id": call.get("id"), "type": "function",
                         "function": {"name": fn["name"], "arguments": args[:half]}}  # fmt: skip
                rest = {"index": j, "function": {"arguments": args[half:]}}
                for part in (first, rest):
                    chunk = {"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}
                    await _event(send, _data({**base, "choices": [chunk]}))
        finish = "tool_calls" if reply.tool_calls else "stop"
        for i in range(n):
            last = {"index": i, "delta": {}} if chat else {"index": i, "text": ""}
            await _event(send, _data({**base, "choices": [{**last, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            await _event(send, _data({**base, "choices": [], "usage": reply.usage}))
        await _event(send, b"data: [DONE]\n\n", more=False)

    def _embeddings(self, reply: Reply, body: dict[str, Any]) -> bytes:
        inputs = body.get("input")
        texts = inputs if isinstance(inputs, list) else [inputs]
        vectors = reply.embeddings or [fake_embedding(f"{self.name}:{t}") for t in texts]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return json.dumps({
            "object": "list", "data": data, "model": body.get("model", "double-model"),
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }).encode()  # fmt: skip


def _split(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _error(message: str) -> bytes:
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return json.dumps({"error": error}).encode()


async def _event(send: Any, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})
