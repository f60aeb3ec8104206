"""SSE time to first chunk, sequentially (c=1): direct to nginx vs through each tunegate mode."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp

from bench.proxy.nginx import Nginx
from bench.proxy.processes import Targets

__all__ = ["first_chunk_latency"]


async def _measure(url: str, body: str, samples: int) -> list[float]:
    times: list[float] = []
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    async with aiohttp.ClientSession() as session:
        for i in range(samples + 20):
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.content.readany()
                first = time.perf_counter() - started
                await response.read()
            if i >= 20:  # the first requests warm the connection pools
                times.append(first * 1000)
    return times


def first_chunk_latency(
    targets: Targets, nginx: Nginx, body: str, samples: int
) -> dict[str, dict[str, float]]:
    """Median and p99 time to the first body chunk, and the added median vs direct, in ms."""
    out: dict[str, dict[str, float]] = {}
    for name in ("direct", "tunegate-off", "tunegate-on"):
        url = targets.url(name, "sse", nginx)
        assert url is not None
        times = sorted(asyncio.run(_measure(url, body, samples)))
        out[name] = {
            "p50_ms": round(statistics.median(times), 3),
            "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        }
    for name in ("tunegate-off", "tunegate-on"):
        out[name]["added_p50_ms"] = round(out[name]["p50_ms"] - out["direct"]["p50_ms"], 3)
    return out
