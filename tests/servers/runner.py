"""Run an ASGI app under uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tunegate.net import free_port

__all__ = ["free_port", "serve_in_thread"]


@contextmanager
def serve_in_thread(
    app: Any, *, port: int | None = None, timeout: float = 10.0, keep_alive_s: int = 5
) -> Iterator[str]:
    """Yield ``http://127.0.0.1:PORT`` while ``app`` serves; shut down on exit.

    ``keep_alive_s`` is when uvicorn closes an idle keep-alive connection (its default: 5).
    """
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=keep_alive_s,
    )
    server = uvicorn.Server(config)
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
