"""A TCP relay on 127.0.0.1 that can withhold the server's replies (a stalled network).

Usage::

    with TcpRelay("127.0.0.1", 6379) as relay:     # clients connect to relay.port
        relay.hold(b"EVALSHA")                      # requests containing this reach the server,
        ...                                         # their replies never reach the client
        assert relay.held >= 1                      # the server did answer one of them
        relay.release()                             # new requests are answered again

A request is forwarded in full before its connection starts withholding, so the server executes
it; only the answer is lost. That is a client's reply timeout on work the server did, the case
idempotent writes must survive, and it happens whatever the machine's load: no timing involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

__all__ = ["TcpRelay"]


class _Link:
    """One relayed connection; ``withheld`` once a held request went through it."""

    __slots__ = ("withheld",)

    def __init__(self) -> None:
        self.withheld = False


class TcpRelay:
    """Relays every connection to ``host:port``; :meth:`hold` withholds chosen replies.

    ``forwarded`` counts the client chunks that contained the held marker and reached the server;
    ``held`` counts the server's reply chunks that were withheld. Both are read from other threads
    (single int updates under the GIL).
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.forwarded = 0
        self.held = 0
        self._marker: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-relay", daemon=True)
        self._server: asyncio.Server | None = None

    def hold(self, marker: bytes) -> None:
        """From now on, a connection that carries a request containing ``marker`` forwards it to
        the server and then passes no reply back (the client sees a stalled server)."""
        self._marker = marker

    def release(self) -> None:
        """New requests are answered again (connections already withholding stay silent)."""
        self._marker = None

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        if not self._started.wait(10):
            raise TimeoutError("relay did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        link = _Link()
        await asyncio.gather(
            self._requests(reader, up_writer, link), self._replies(up_reader, writer, link)
        )

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                marker = self._marker
                if marker is not None and marker in data:
                    link.withheld = True  # before the server can see it, so before any reply
                    self.forwarded += 1
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if link.withheld:
                    self.held += 1
                    continue
                writer.write(data)
                await writer.drain()
        writer.close()
