"""`python -m bench.console_index`: a rare-filter page of the pair browser, scan against index.

For each size, an embedded Redis gets that many pairs (bench.redis_size's shape: a ~0.5 KB
request, two answers of ``--answer`` bytes) with one pairwise verdict each: categories "task" and
"probe" alternate, one pair in 1,000 is "rare", one verdict in 10 is for the control and one in
50 has its orders disagreeing. Then, in the same run and on the same data, ``--repeats`` clicks
of each filter, medians: *before*, the bounded scan (proxy/console/browse.py ``scan_page``, 2,000
pairs read at most, as every click did before the index), and *after*, ``browse.page`` (a
catch-up fold that finds nothing new, then the page from the index). Filters: a category that
matches nothing, the rare category (one in 1,000) and rare with the control winning (one in
10,000). It also reports the index build (a cold fold of every pair, as the first controller look
after a deploy does) and the index's bytes per pair (MEMORY USAGE of its keys). Load average next
to each figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from bench.redis_size import sample_pair
from proxy.console import browse
from tunegate import keys
from tunegate.pair_index import PairIndex
from tunegate.records import OrderVerdict, Pair, Verdict, Winner, encode
from tunegate.redis import EmbeddedRedis

__all__ = ["measure", "seed"]

EXP = "size"  # bench.redis_size's pairs name it
START_MS = 1_700_000_000_000
FILTERS = {
    "nothing matches": browse.Filters(category="absent"),
    "rare (1/1,000)": browse.Filters(category="rare"),
    "rare + control wins (1/10,000)": browse.Filters(category="rare", winner=Winner.CONTROL),
}


def _verdict(pair: Pair, i: int) -> Verdict:
    disagree = i % 50 == 7
    # one in 10 for the control, also among the rare pairs (i % 1000 == 500): by thousands
    control = i % 10 == 3 or (pair.category == "rare" and (i // 1000) % 10 == 3)
    winner = Winner.TIE if disagree else Winner.CONTROL if control else Winner.CANDIDATE
    orders = [
        OrderVerdict(order="candidate_first", raw='{"verdict": "A>B"}', label="A>B"),
        OrderVerdict(order="control_first", raw='{"verdict": "B>A"}', label="B>A"),
    ]
    return Verdict(
        pair_id=pair.id, experiment=EXP, scorer="pairwise", judge_version="judge@abc",
        winner=winner, score=0.5 if disagree else 1.0, reason="judged", orders=orders,
        inconsistent=disagree, category=pair.category, time=pair.time + 1,
        rationale="The candidate answers the question directly and correctly." * 3,
    )  # fmt: skip


async def seed(client: aioredis.Redis, n: int, answer: int) -> None:
    rng = random.Random(17)
    shapes = [sample_pair(rng, answer) for _ in range(32)]
    for first in range(0, n, 2000):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(first, min(n, first + 2000)):
                category = "rare" if i % 1000 == 500 else ("task", "probe")[i % 2]
                ms = START_MS + 10 * i
                pair = shapes[i % 32].model_copy(
                    update={"id": f"p{i:09d}", "category": category, "time": ms / 1000}
                )
                pipe.xadd(keys.pairs(EXP), encode(pair), id=f"{ms}-0")  # type: ignore[arg-type]  # redis-py's field type is invariant
                pipe.xadd(keys.verdicts(EXP), encode(_verdict(pair, i)), id=f"{ms + 5}-0")  # type: ignore[arg-type]  # as above
            await pipe.execute()


async def _median(repeats: int, click: Callable[[], Awaitable[browse.Page]]) -> tuple[float, int]:
    times, shown = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = await click()
        times.append(time.perf_counter() - start)
        shown = len(found.rows)
    return statistics.median(times), shown


async def _index_bytes(client: aioredis.Redis) -> int:
    total = 0
    async for key in client.scan_iter(match=keys.pair_index(EXP, "*"), count=1000):
        total += int(cast(int, await client.memory_usage(key, samples=0)) or 0)
    return total


async def measure(url: str, n: int, answer: int, repeats: int) -> dict[str, object]:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushall()
        await seed(client, n, answer)
        start = time.perf_counter()
        assert await PairIndex(client, EXP).catch_up()
        build = time.perf_counter() - start
        out: dict[str, object] = {
            "build_s": build,
            "build_load": os.getloadavg()[0],
            "index_bytes_per_pair": await _index_bytes(client) / n,
        }
        for name, filters in FILTERS.items():
            scan = await _median(repeats, functools.partial(browse.scan_page, client, EXP, filters))
            load_before = os.getloadavg()[0]
            index = await _median(repeats, functools.partial(browse.page, client, EXP, filters))
            out[name] = (scan, load_before, index, os.getloadavg()[0])
        return out
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console_index")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--answer", type=int, default=1024, help="bytes per answer")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            for n in args.sizes:
                result = asyncio.run(measure(url, n, args.answer, args.repeats))
                print(
                    f"{n:,} pairs ({args.answer} B answers; page of 20; {args.repeats} clicks,"
                    f" medians): index built in {result['build_s']:.1f} s"
                    f" ({n / cast(float, result['build_s']):,.0f} pairs/s, load"
                    f" {result['build_load']:.2f}), {result['index_bytes_per_pair']:.0f} B/pair"
                )
                for name in FILTERS:
                    (scan_s, scan_rows), load_s, (index_s, index_rows), load_i = cast(
                        tuple[tuple[float, int], float, tuple[float, int], float], result[name]
                    )
                    print(
                        f"  {name:32} scan {scan_s * 1000:8.1f} ms ({scan_rows} shown, load"
                        f" {load_s:.2f})  index {index_s * 1000:6.1f} ms ({index_rows} shown,"
                        f" load {load_i:.2f})  scan/index {scan_s / index_s:6.0f}x"
                    )
                sys.stdout.flush()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
