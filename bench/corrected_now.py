"""`python -m bench.corrected_now`: how long the console's live corrected estimate holds the loop.

analysis/corrected_now.py runs on the proxy's event loop (the console is served by the proxy).
For each size, an embedded Redis gets that many judged pairs (bench.console_index's data) and 200
human labels, the evidence store is folded to the end (the controller's looks do that), and then
``--repeats`` calls of :func:`corrected_now` run beside a ticker that sleeps 1 ms at a time: the
longest gap between its ticks is how long the loop was blocked (no request served meanwhile).
Also the phases inline on the loop, for comparison: ``store.evidence()`` (rows and labels read,
decoded) and ``corrected_estimate`` (PPI++ with numpy). Medians; load average with each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from analysis.corrected_now import corrected_now
from analysis.decide_checks import corrected_estimate
from analysis.evidence_store import EvidenceStore
from bench.console_index import EXP, START_MS, seed
from tunegate import keys
from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.records import HumanLabel, Winner, encode
from tunegate.redis import EmbeddedRedis

__all__ = ["measure"]

LABELS = 200


async def _labels(client: aioredis.Redis, n: int) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for k in range(LABELS):
            i = k * (n // LABELS)
            label = HumanLabel(
                pair_id=f"p{i:09d}",
                experiment=EXP,
                winner=Winner.CANDIDATE if k % 3 else Winner.CONTROL,
                pair_stream_id=f"{START_MS + 10 * i}-0",
            )
            pipe.xadd(keys.labels(EXP), encode(label))  # type: ignore[arg-type]  # redis-py's field type is invariant
        await pipe.execute()


async def _blocked(work: asyncio.Future[object] | asyncio.Task[object]) -> float:
    """The longest gap between 1 ms ticks of the loop while ``work`` runs, in seconds."""
    longest, last = 0.0, time.perf_counter()
    while not work.done():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last - 0.001), now
    await work
    return longest


async def measure(url: str, n: int, repeats: int) -> dict[str, tuple[float, float]]:
    client = aioredis.Redis.from_url(url)
    config = ExperimentConfig(
        name=EXP, control=ArmConfig(upstream="a"), candidate=ArmConfig(upstream="b")
    )
    try:
        await client.flushall()
        await seed(client, n, 64)
        await _labels(client, n)
        store = EvidenceStore(client, EXP)
        await store.catch_up()
        walls, gaps, reads, estimates = [], [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            gaps.append(await _blocked(asyncio.ensure_future(corrected_now(client, config))))
            walls.append(time.perf_counter() - start)
            start = time.perf_counter()
            evidence = await store.evidence()
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert corrected_estimate(evidence, config.policy) is not None
            estimates.append(time.perf_counter() - start)
        load = os.getloadavg()[0]
        return {
            name: (statistics.median(values), load)
            for name, values in (
                ("corrected_now wall", walls),
                ("corrected_now: longest loop block", gaps),
                ("inline: store.evidence()", reads),
                ("inline: corrected_estimate", estimates),
            )
        }
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corrected_now")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            for n in args.sizes:
                print(f"{n:,} judged rows, {LABELS} labels ({args.repeats} calls, medians)")
                for name, (seconds, load) in asyncio.run(measure(url, n, args.repeats)).items():
                    print(f"  {name:36} {seconds * 1000:8.1f} ms (load {load:.2f})")
                sys.stdout.flush()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
