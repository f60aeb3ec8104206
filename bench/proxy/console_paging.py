"""Console paging on a large stream: pages cost the same at any depth and never read the stream.

    python -m bench.proxy.console_paging [--pairs 200000] [--repeats 21]

Writes ``pairs`` pairs and one verdict each (tests/proxy's console records, made here with the
same shape) into an embedded redis-server, then times proxy.console.browse.page -- the code the
pair browser runs, without HTTP -- for the newest page, a page from a cursor in the middle, a
time window in the middle, and a filter that matches nothing (capped at 2,000 entries read);
beside them the baseline a naive browser pays: reading the whole pairs stream once (XRANGE in
batches of 5,000). Medians of ``repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import orjson
import redis
import redis.asyncio as aioredis

from cli.server import free_port
from proxy.console import browse
from tunegate import keys
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Verdict, Winner, encode
from tunegate.redis import EmbeddedRedis

EXP = "bench"
START_MS = 1_800_000_000_000


def _body(text: str) -> str:
    message = {"role": "assistant", "content": text}
    return orjson.dumps({"choices": [{"message": message, "finish_reason": "stop"}]}).decode()


def load(client: redis.Redis, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pair = Pair(
            id=f"p{i}", experiment=EXP, time=(START_MS + i) / 1000, endpoint=Endpoint.CHAT,
            request='{"messages":[{"role":"user","content":"q"}]}', served_arm=Arm.CONTROL,
            control=ArmResult(upstream="c", model="c", status=200, body=_body(f"short {i}")),
            candidate=ArmResult(upstream="k", model="k", status=200, body=_body(f"long {i} " * 4)),
            category="task" if i % 2 else "probe",
        )  # fmt: skip
        verdict = Verdict(pair_id=pair.id, experiment=EXP, scorer="pairwise", judge_version="1",
                          winner=Winner.CANDIDATE, score=1.0)  # fmt: skip
        pipe.xadd(keys.pairs(EXP), encode(pair), id=f"{START_MS + i}-0")  # type: ignore[arg-type]  # redis-py's field type is invariant
        pipe.xadd(keys.verdicts(EXP), encode(verdict), id=f"{START_MS + i}-1")  # type: ignore[arg-type]  # as above
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


async def _median(repeats: int, run: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(url: str, n: int, repeats: int) -> None:
    client = aioredis.Redis.from_url(url)
    middle = f"{START_MS + n // 2}-0"
    window = browse.Filters(since_ms=START_MS + n // 2 - 100, until_ms=START_MS + n // 2)
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "newest page": lambda: browse.page(client, EXP, browse.Filters()),
        "page from the middle (cursor)": lambda: browse.page(
            client, EXP, browse.Filters(), cursor=middle
        ),
        "time window in the middle": lambda: browse.page(client, EXP, window),
        "filter matching nothing (2,000 read)": lambda: browse.page(
            client, EXP, browse.Filters(category="none")
        ),
    }

    async def whole_stream() -> int:
        count, start = 0, "-"
        while True:
            entries = cast(
                browse.Entries, await client.xrange(keys.pairs(EXP), min=start, count=5000)
            )
            count += len(entries)
            if len(entries) < 5000:
                return count
            start = "(" + entries[-1][0].decode()

    try:
        baseline = await _median(max(3, repeats // 7), whole_stream)
        print(f"{n} pairs; medians (busy machine)")
        print(f"{'read the whole stream (baseline)':40} {baseline * 1000:9.1f} ms")
        for name, run in cases.items():
            took = await _median(repeats, run)
            print(f"{name:40} {took * 1000:9.1f} ms   {baseline / took:8.0f}x faster")
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", port=free_port())
        url = server.start()
        try:
            client = redis.Redis.from_url(url)
            started = time.perf_counter()
            load(client, args.pairs)
            print(f"loaded in {time.perf_counter() - started:.0f} s")
            client.close()
            asyncio.run(measure(url, args.pairs, args.repeats))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
