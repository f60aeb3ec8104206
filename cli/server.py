"""Serve an ASGI app under uvicorn on loopback: as a task (the demo) or in a thread (tests, bench).

One place builds the uvicorn configuration for in-process serving, so the demo, the tests and the
benchmarks start and stop their servers the same way; `tunegate serve` itself calls uvicorn.run
with the production options (cli/serve.py).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn

__all__ = ["free_port", "serve_in_thread", "serving"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server(app: Any, port: int, grace_s: int, keep_alive_s: int = 5) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        timeout_graceful_shutdown=grace_s,
        timeout_keep_alive=keep_alive_s,
    )
    return uvicorn.Server(config)


@asynccontextmanager
async def serving(app: Any, *, timeout_s: float = 60.0, grace_s: int = 5) -> AsyncIterator[str]:
    """Serve ``app`` as a task on the running loop; yield ``http://127.0.0.1:PORT``, stop on exit.

    Raises what stopped the server if it exits before it started, TimeoutError if it never starts.
    """
    port = free_port()
    server = _server(app, port, grace_s)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    try:
        async with asyncio.timeout(timeout_s):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it, if anything did
                    raise RuntimeError(f"server on port {port} stopped before it started")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def serve_in_thread(
    app: Any, *, port: int | None = None, timeout: float = 10.0, keep_alive_s: int = 5
) -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT`` while ``app`` serves in a background thread.

    ``keep_alive_s`` is when uvicorn closes an idle keep-alive connection (its default: 5).
    Raises RuntimeError when the server has not stopped ``timeout`` seconds after the block
    (unless the block itself raised): a server left running serves, and writes to its Redis,
    into whatever runs next.
    """
    port = port or free_port()
    server = _server(app, port, grace_s=2, keep_alive_s=keep_alive_s)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server on port {port} failed to start")
        if time.monotonic() > deadline:
            raise TimeoutError(f"server on port {port} did not start in {timeout}s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"server on port {port} did not stop within {timeout}s")
