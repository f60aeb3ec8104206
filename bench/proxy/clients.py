"""Why aiohttp: one keep-alive POST loop with httpx, httpx2 (when installed) and aiohttp, c=32."""

from __future__ import annotations

import asyncio
import importlib.util
import time

import aiohttp
import httpx

__all__ = ["compare_clients"]

_CONCURRENCY = 32
_SECONDS = 3.0


async def _loop(post: object, deadline: float) -> int:
    count = 0
    assert callable(post)
    while time.perf_counter() < deadline:
        await post()
        count += 1
    return count


async def _httpx(url: str, body: bytes) -> float:
    limits = httpx.Limits(max_connections=_CONCURRENCY, max_keepalive_connections=_CONCURRENCY)
    async with httpx.AsyncClient(limits=limits) as client:

        async def post() -> None:
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            response.read()

        return await _run(post)


async def _httpx2(url: str, body: bytes) -> float:
    import httpx2  # optional: measured only where it is installed

    limits = httpx2.Limits(max_connections=_CONCURRENCY, max_keepalive_connections=_CONCURRENCY)
    async with httpx2.AsyncClient(limits=limits) as client:

        async def post() -> None:
            response = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            response.read()

        return await _run(post)


async def _aiohttp(url: str, body: bytes) -> float:
    connector = aiohttp.TCPConnector(limit=_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with session.post(
                url, data=body, headers={"content-type": "application/json"}
            ) as response:
                await response.read()

        return await _run(post)


async def _run(post: object) -> float:
    started = time.perf_counter()
    deadline = started + _SECONDS
    counts = await asyncio.gather(*(_loop(post, deadline) for _ in range(_CONCURRENCY)))
    return sum(counts) / (time.perf_counter() - started)


def compare_clients(base_url: str, body: str) -> dict[str, float]:
    """Requests per second of each client against the fixed-body upstream (uvloop, one process)."""
    import uvloop

    url = f"{base_url}/v1/chat/completions"
    data = body.encode()
    results = {}
    for name, fn in (("httpx", _httpx), ("httpx2", _httpx2), ("aiohttp", _aiohttp)):
        if name == "httpx2" and importlib.util.find_spec("httpx2") is None:
            continue
        results[name] = round(uvloop.run(fn(url, data)), 1)
    return results
