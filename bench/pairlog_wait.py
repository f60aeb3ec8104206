"""`python -m bench.pairlog_wait`: what ``redis.wait_replicas`` costs the pair logger.

The proxy's own PairLogger against a LocalCluster (three masters with one replica each, loopback
ports), with ``wait_replicas`` 0 and 1 in the same run, alternating, ``--repeats`` times each;
medians. Pairs of bench.redis_size's shape (a ~0.5 KB request, two answers of ``--answer`` bytes).

- drain: ``--pairs`` pairs submitted at once, the time until every one is logged (pairs/s);
- latency: one pair at a time, submit to logged, with ``flush_interval_ms`` 1 (what a WAIT adds to
  a batch: the replica's acknowledgement, one more round trip inside the master).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time

from prometheus_client import CollectorRegistry

from bench.cluster import LocalCluster
from bench.redis_size import EXP, sample_pair
from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from proxy.pairlog import PairLogger
from tunegate.records import Pair
from tunegate.redis import RedisSettings, connect

__all__ = ["measure"]


def _logged(metrics: ProxyMetrics) -> float:
    value = metrics.registry.get_sample_value("tunegate_pairs_logged_total", {"experiment": EXP})
    return value or 0.0


async def _until_empty(logger: PairLogger, within_s: float = 120.0) -> None:
    """Until the buffer is empty: a batch leaves it in the same step that counts it logged."""
    deadline = time.monotonic() + within_s
    while logger.depth:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{logger.depth} pairs still buffered")
        await asyncio.sleep(0)  # poll without sleeping a timer tick: the latency is sub-ms


async def _drain(settings: RedisSettings, wait: int, pairs: list[Pair]) -> float:
    """Pairs per second from submit to the last one logged."""
    metrics = ProxyMetrics(CollectorRegistry())
    section = PairLogSettings(buffer_size=len(pairs), flush_interval_ms=10)
    async with (
        connect(settings) as client,
        PairLogger(
            client, section, metrics, maxlen=10**7, wait_replicas=wait, wait_timeout_ms=500
        ) as logger,
    ):
        started = time.perf_counter()
        for pair in pairs:
            logger.submit(pair)
        await _until_empty(logger)
        rate = len(pairs) / (time.perf_counter() - started)
    if _logged(metrics) != len(pairs):
        raise RuntimeError(f"{_logged(metrics):.0f} of {len(pairs)} pairs logged")
    return rate


async def _latency(settings: RedisSettings, wait: int, pairs: list[Pair]) -> float:
    """Median seconds from submitting one pair to its being logged, one at a time."""
    metrics = ProxyMetrics(CollectorRegistry())
    section = PairLogSettings(flush_interval_ms=1)
    took: list[float] = []
    async with (
        connect(settings) as client,
        PairLogger(
            client, section, metrics, maxlen=10**7, wait_replicas=wait, wait_timeout_ms=500
        ) as logger,
    ):
        for pair in pairs:
            started = time.perf_counter()
            logger.submit(pair)
            await _until_empty(logger)
            took.append(time.perf_counter() - started)
    return statistics.median(took)


async def measure(
    cluster: LocalCluster, *, pairs: int, singles: int, repeats: int, answer: int
) -> dict[int, dict[str, list[float]]]:
    """{wait_replicas: {"pairs_per_s": [...], "latency_s": [...]}} for 0 and 1, alternating."""
    rng = random.Random(7)
    settings = RedisSettings.model_validate({"url": cluster.url, "cluster": True})
    out: dict[int, dict[str, list[float]]] = {w: {"pairs_per_s": [], "latency_s": []}
                                              for w in (0, 1)}  # fmt: skip
    for _ in range(repeats):
        for wait in (0, 1):
            cluster.flushall()
            batch = [sample_pair(rng, answer) for _ in range(pairs)]
            out[wait]["pairs_per_s"].append(await _drain(settings, wait, batch))
            cluster.flushall()
            batch = [sample_pair(rng, answer) for _ in range(singles)]
            out[wait]["latency_s"].append(await _latency(settings, wait, batch))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pairlog_wait")
    parser.add_argument("--pairs", type=int, default=5000, help="pairs per drain")
    parser.add_argument("--singles", type=int, default=200, help="pairs per latency run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--answer", type=int, default=1024, help="bytes per answer")
    args = parser.parse_args()
    cluster = LocalCluster(masters=3, replicas=1)
    cluster.start()
    try:
        result = asyncio.run(measure(cluster, pairs=args.pairs, singles=args.singles,
                                     repeats=args.repeats, answer=args.answer))  # fmt: skip
    finally:
        cluster.stop()
    load = os.getloadavg()[0]
    print(f"pair logger with redis.wait_replicas 0 and 1 (3-master cluster, 1 replica each, "
          f"loopback; {args.answer} B answers; {args.repeats} alternating repeats, medians; "
          f"shared 2-core machine, load {load:.2f})")  # fmt: skip
    off, on = (result[w] for w in (0, 1))
    rate_off, rate_on = (statistics.median(r["pairs_per_s"]) for r in (off, on))
    lat_off, lat_on = (statistics.median(r["latency_s"]) for r in (off, on))
    print(f"  drain of {args.pairs} pairs: off {rate_off:,.0f} pairs/s, on {rate_on:,.0f} "
          f"pairs/s (on/off {rate_on / rate_off:.2f})")  # fmt: skip
    print(f"  one pair, submit to logged: off {lat_off * 1000:.2f} ms, on {lat_on * 1000:.2f} ms "
          f"(+{(lat_on - lat_off) * 1000:.2f} ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
