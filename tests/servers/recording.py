"""An HTTP/1.1 upstream that records the exact bytes it received and every request h11 parses.

Hostile-input tests put it behind the proxy and ask what reached it: how many requests, with
which targets and headers, on how many connections, and the raw bytes of each connection. h11 is
the reference parser, so a smuggled second request shows up as a second entry in ``requests``.

Every parsed request is answered 200 with a JSON body naming its target and an OpenAI-shaped
``choices`` list (so the SDK can parse it), unless ``hold`` is set: then answers wait until it is
cleared (a hung upstream).

Usage::

    with recording_server() as upstream:          # upstream.url -> http://127.0.0.1:PORT
        ...
        upstream.requests                         # list[Recorded]
        upstream.raw()                            # every byte received, per connection
        upstream.reset()
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h11
import orjson

from cli.server import free_port

__all__ = ["Recorded", "RecordingServer", "recording_server"]


@dataclass(frozen=True)
class Recorded:
    """One request as h11 parsed it, and which connection it came on."""

    connection: int
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name.lower()]


@dataclass
class RecordingServer:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what h11 refused, per connection
    connections: list[bytearray] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)  # set: answers wait
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    pad: int = 0  # answers carry this many extra bytes (a "pad" field)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _released(self) -> None:
        while self.hold.is_set():
            time.sleep(0.01)  # in a worker thread, so a test's clear() is seen within 10 ms

    def raw(self) -> list[bytes]:
        with self._lock:
            return [bytes(c) for c in self.connections]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.connections.clear()
            self.hold.clear()
            self.extra_headers = []
            self.pad = 0

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
            time.sleep(0.005)
        return list(self.requests)

    # -- the server -------------------------------------------------------------------------

    def _answer(self, request: Recorded) -> bytes:
        return orjson.dumps(
            {
                "id": "rec-1",
                "object": "chat.completion",
                "created": 0,
                "model": "recorded",
                "target": request.target.decode("latin-1"),
                "body_length": len(request.body),
                "pad": "x" * self.pad,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "recorded"},
                        "finish_reason": "stop",
                    }
                ],
            }
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 26)
        with self._lock:
            number = len(self.connections)
            received = bytearray()
            self.connections.append(received)
        current: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    with self._lock:
                        received += data
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    current, body = event, bytearray()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage) and current is not None:
                    recorded = Recorded(
                        number, current.method, current.target, tuple(current.headers), bytes(body)
                    )
                    with self._lock:
                        self.requests.append(recorded)
                    if self.hold.is_set():
                        await asyncio.to_thread(self._released)
                    payload = self._answer(recorded)
                    headers = [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                        *self.extra_headers,
                    ]
                    writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                    writer.write(conn.send(h11.Data(data=payload)) or b"")
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (h11.ProtocolError, ConnectionError) as exc:
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    """A RecordingServer on a free loopback port, served from its own thread and event loop."""
    state = RecordingServer()
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(state.handle, "127.0.0.1", port)
        started.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("recording server did not start")
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.hold.clear()
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
