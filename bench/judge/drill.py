"""`python -m bench.judge.drill`: a judge that answers 429 with Retry-After for two minutes.

Two worker processes (the judge's own client, production defaults for leases and heartbeats)
drain pairs while an OpenAI-compatible judge double answers every call with 429 and
``Retry-After: 3`` for ``--outage`` seconds from its first call, then recovers. Reported:
every pair judged exactly once, dead letters (none expected), calls made against the bound
the Retry-After schedule allows (pairs x 2 orders answered, plus per worker the calls in
flight when the outage began and one probe per Retry-After), pairs taken over from a live
worker, and the longest ``rate_limited_seconds`` the heartbeats showed.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import cast

import orjson
import redis
import yaml

from bench.judge.__main__ import EXP, load, make_pairs
from bench.servers.judge_double import JudgeDouble, Step
from cli.server import free_port, serve_in_thread
from tunegate import keys
from tunegate.records import decode_verdict
from tunegate.redis import EmbeddedRedis

__all__ = ["drill"]

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def _config(path: Path, redis_url: str, judge_url: str, concurrency: int) -> Path:
    path.write_text(yaml.safe_dump({
        "redis": {"url": redis_url},
        "upstreams": {"base": {"base_url": "http://127.0.0.1:1/v1"},
                      "ft": {"base_url": "http://127.0.0.1:2/v1"}},
        "experiments": [{"name": EXP, "control": {"upstream": "base"},
                         "candidate": {"upstream": "ft"}}],
        "judge": {"endpoint": {"model": "drill-judge", "base_url": f"{judge_url}/v1"},
                  "concurrency": concurrency, "batch_size": 16, "read_block_ms": 100},
    }))  # fmt: skip
    return path


def drill(
    *, outage: float = 120.0, retry_after: float = 3.0, pairs: int = 200, workers: int = 2,
    concurrency: int = 8,
) -> bool:  # fmt: skip
    """Run the drill and print its figures; True when every check held."""
    double = JudgeDouble(policy=lambda prompt: Step("A>B"))
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(double.app) as judge_url:
        server = EmbeddedRedis(Path(tmp) / "redis", port=free_port())
        redis_url = server.start()
        client = redis.Redis.from_url(redis_url)
        try:
            batch = make_pairs(pairs, 0.0, "drill")
            load(client, batch)
            config = _config(Path(tmp) / "drill.yaml", redis_url, judge_url, concurrency)
            double.outage(outage, retry_after=retry_after, from_first_call=True)
            started = time.monotonic()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "bench.judge.worker_proc", str(config), f"d{i}"],
                    stdout=subprocess.PIPE,
                )
                for i in range(workers)
            ]
            limited = 0.0
            while any(p.poll() is None for p in procs):
                for i in range(workers):
                    beat = client.hget(keys.heartbeat(f"d{i}"), "rate_limited_seconds")
                    limited = max(limited, float(beat or 0))
                time.sleep(1.0)
            wall = time.monotonic() - started
            stats = [orjson.loads(p.communicate()[0].splitlines()[-1]) for p in procs]
            entries = cast(Entries, client.xrange(keys.verdicts(EXP)))  # redis-py types it loosely
            judged = Counter(decode_verdict(f).pair_id for _, f in entries)
            dead = client.xlen(keys.dead(EXP))
        finally:
            client.close()
            server.stop()
    statuses = Counter(double.statuses())
    once = sorted(judged) == sorted(p.id for p in batch) and set(judged.values()) == {1}
    bound = workers * (concurrency * 2 + math.ceil(outage / retry_after) + 1)
    failed = sum(n for status, n in statuses.items() if status != 200)
    reclaimed = sum(s["reclaimed"] for s in stats)
    print(f"drill: {outage:.0f} s of 429 (Retry-After {retry_after:g} s), {pairs} pairs, "
          f"{workers} workers x concurrency {concurrency}; drained in {wall:.1f} s")  # fmt: skip
    print(f"  every pair judged exactly once: {once}; dead letters: {dead}; "
          f"pairs taken from a live worker: {reclaimed}")  # fmt: skip
    print(f"  calls: {statuses[200]} answered (pairs x 2 = {2 * pairs}), {failed} refused "
          f"(bound {bound} = {workers} x ({concurrency} x 2 in flight + "
          f"{math.ceil(outage / retry_after)} + 1 probes)); "
          f"longest rate_limited_seconds in a heartbeat: {limited:.0f} s")  # fmt: skip
    ok = once and dead == 0 and statuses[200] == 2 * pairs and failed <= bound and not reclaimed
    print(f"  drill {'passed' if ok else 'FAILED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judge.drill")
    parser.add_argument("--outage", type=float, default=120.0)
    parser.add_argument("--retry-after", type=float, default=3.0)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ok = drill(outage=args.outage, retry_after=args.retry_after, pairs=args.pairs,
               workers=args.workers)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
