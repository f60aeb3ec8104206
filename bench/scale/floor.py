"""`python -m bench.scale.floor`: what reading a minute's new records out of Redis costs at least.

A steady look folds ``--batch`` new full pairs and their verdicts (6,000 each by default: a minute
at 100 requests/s). This times, on a fresh redis-server holding just those, the reads a fold could
make and the fold itself, each ``--reps`` times, as wall time and as CPU time of this process and of
redis-server (read from /proc, so a machine shared with other work inflates the CPU figures less
than the wall ones):

- ``xrange``: both streams whole to the client (redis-py with hiredis, bodies included);
- ``lua-count``: XRANGE inside Lua, 250 entries a call, counting only: no script that reads the
  entries can cost Redis less;
- ``fold-read``: the fold's own read script (analysis/evidence_scripts.py) over both streams;
- ``compact``: the same script over a stream holding only each pair's outcome field, which a
  writer-side outcomes stream would hold (what the read would cost if the pairs' bodies lived
  elsewhere);
- ``fold``: one whole fold of the records (EvidenceStore.catch_up with the policy's state), after
  a reset; the store's other keys as a steady look has them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import numpy as np
import redis.asyncio as aioredis

from analysis.evidence_scripts import _READ, _STEP
from analysis.evidence_store import EvidenceStore
from bench.analysis.factories import NOW, experiment
from bench.children import stop_all
from bench.scale.__main__ import _start_redis
from bench.scale.records import write_full
from tunegate import keys

EXPERIMENT = "exp"
_COUNT = """
local n = 0
for s = 1, #KEYS do
  local after = '-'
  while true do
    local e = redis.call('XRANGE', KEYS[s], after, '+', 'COUNT', tonumber(ARGV[1]))
    if #e == 0 then break end
    n = n + #e
    after = '(' .. e[#e][1]
  end
end
return n
"""


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    client: aioredis.Redis, label: str, run: Callable[[], Awaitable[object]], reps: int
) -> None:
    pid = int((await client.info("server"))["process_id"])
    await run()  # warm: scripts loaded, connections open
    walls = []
    server, mine = _cpu_s(pid), time.process_time()
    for _ in range(reps):
        started = time.perf_counter()
        await run()
        walls.append(time.perf_counter() - started)
    server, mine = _cpu_s(pid) - server, time.process_time() - mine
    print(
        f"{label:>10}: wall median {1e3 * float(np.median(walls)):7.1f} ms   CPU per run:"
        f" client {1e3 * mine / reps:6.1f} ms, redis-server {1e3 * server / reps:6.1f} ms",
        flush=True,
    )


async def main(url: str, batch: int, reps: int) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
        await write_full(client, EXPERIMENT, batch, prefix="f", start=NOW - 60, seed=1)
        pairs, verdicts = keys.pairs(EXPERIMENT), keys.verdicts(EXPERIMENT)
        compact = "floor:outcomes"  # no experiment's key: only this bench reads it
        pipe = client.pipeline(transaction=False)
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(pairs))
        for _, fields in entries:
            pipe.xadd(compact, {b"v": fields[b"v"], b"o": fields[b"o"]})
        await pipe.execute()
        meta = "floor:meta"  # an empty hash: every cursor at the start

        def read(stream: str) -> Callable[[], Awaitable[object]]:
            args = (str(batch), str(_STEP), "cursor:pairs", "o", "cursor:verdicts", "o")
            return lambda: client.eval(_READ, 3, meta, stream, verdicts, *args)

        async def whole() -> None:
            for stream in (pairs, verdicts):
                await client.xrange(stream)

        policy = experiment().policy

        async def fold() -> None:
            await EvidenceStore(client, EXPERIMENT).reset()
            await EvidenceStore(client, EXPERIMENT, policy=policy).catch_up()

        await _measure(client, "xrange", whole, reps)
        lua_count = lambda: client.eval(_COUNT, 2, pairs, verdicts, str(_STEP))  # noqa: E731
        await _measure(client, "lua-count", lua_count, reps)
        await _measure(client, "fold-read", read(pairs), reps)
        await _measure(client, "compact", read(compact), reps)
        await _measure(client, "fold", fold, reps)
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scale.floor")
    parser.add_argument("--batch", type=int, default=6000, help="new pairs (and verdicts)")
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    print(f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tg-floor-") as data:
        process, url = _start_redis(Path(data))
        try:
            asyncio.run(main(url, args.batch, args.reps))
        finally:
            stop_all([process])
