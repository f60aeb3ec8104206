"""The demo's services in one process tree: an embedded Redis and the proxy under uvicorn.

Redis runs as a child process with its data in the demo's work directory and is flushed at start,
so every run judges only its own traffic. The proxy is the real ``proxy.app.create_app`` served by
uvicorn on a free loopback port, as a task on the caller's event loop; in-process models do their
work in threads, so the loop stays free for the traffic client and the judge worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from pydantic import SecretStr

from cli.server import free_port
from cli.settings import Settings
from demo.errors import DemoError
from tunegate import keys
from tunegate.redis import EmbeddedRedis, RedisSettings, store_errors

__all__ = ["embedded_redis", "free_port", "proxy_server", "wait_for_pairs"]


@asynccontextmanager
async def embedded_redis(data_dir: Path) -> AsyncIterator[RedisSettings]:
    """A fresh, flushed embedded Redis; yields the settings that point at it."""
    server = EmbeddedRedis(data_dir)
    url = await asyncio.to_thread(server.start)
    try:
        client = aioredis.Redis.from_url(url)
        try:
            with store_errors("flush the demo's redis"):
                await client.flushdb()
        finally:
            await client.aclose()
        yield RedisSettings(url=SecretStr(url), data_dir=data_dir)
    finally:
        await asyncio.to_thread(server.stop)


@asynccontextmanager
async def proxy_server(settings: Settings, timeout_s: float = 60.0) -> AsyncIterator[str]:
    """Serve ``proxy_app(settings)`` until exit; yields the OpenAI base URL."""
    from cli.compose import proxy_app
    from cli.server import serving

    started = False
    try:
        async with serving(proxy_app(settings), timeout_s=timeout_s) as url:
            started = True
            yield f"{url}/v1"
    except RuntimeError as exc:
        if started:
            raise
        raise DemoError(f"the proxy stopped before it started (see the log above): {exc}") from exc


async def wait_for_pairs(
    client: aioredis.Redis, experiment: str, expected: int, timeout_s: float
) -> int:
    """Wait until ``expected`` pairs are logged (shadow copies finish after the served answer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        with store_errors("count pairs"):
            count = int(await client.xlen(keys.pairs(experiment)))
        if count >= expected:
            return count
        if loop.time() > deadline:
            raise DemoError(f"only {count} of {expected} pairs were logged within {timeout_s:.0f}s")
        await asyncio.sleep(0.1)
