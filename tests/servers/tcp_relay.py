"""A TCP relay on 127.0.0.1 that can hold back the server's replies (a slow or stalled network).

Usage::

    with TcpRelay("127.0.0.1", 6379) as relay:     # clients connect to relay.port
        relay.reply_delay_s = 0.5                   # replies reach clients 0.5 s late
        ...

Requests go through at once, so the server executes them; only the answers are late. That is a
client's reply timeout on work the server did, the case idempotent writes must survive.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

__all__ = ["TcpRelay"]


class TcpRelay:
    """Relays every connection to ``host:port``; ``reply_delay_s`` delays server -> client."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.reply_delay_s = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-relay", daemon=True)
        self._server: asyncio.Server | None = None

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
        await asyncio.gather(
            self._pump(reader, up_writer, delayed=False),
            self._pump(up_reader, writer, delayed=True),
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if delayed and self.reply_delay_s:
                    await asyncio.sleep(self.reply_delay_s)
                writer.write(data)
                await writer.drain()
        writer.close()
