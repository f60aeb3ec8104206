"""`python -m bench.scale`: time and peak RSS of one controller look against the history size.

For each size N of judged pairs (10^4 .. 10^7 by default) and a fresh redis-server:

- **state, steady state** (the controller's look): N judged pairs of history in the store's
  decision state, built in bulk by the fold's own update (bench/scale/records.py; the rows are
  written too up to ``--row-sizes``, not beyond: the look does not read them), then ``--looks``
  looks, each after ``--batch`` new full pairs and verdicts arrived (60 s at 100 requests/s by
  default): the fold moves the state forward, ``decide_from_state`` reads only it. Run once per
  reply parser of ``--parsers`` (redis-py's pure-Python one, hiredis when installed);
- **folded, steady state** (the look of ``tunegate decide --loop``, whose continuous folder
  folds every ``fold_interval_seconds``, analysis/folder.py): the same history; the minute's
  pairs arrive in ``--ticks`` slices (60 s / 2 s by default), each folded as it arrives, and the
  look folds the last slice and decides. Printed with the folds' CPU per minute between looks;
- **incremental, steady state** (the rows look, at ``--row-sizes``): the same history as rows
  (a stream cannot hold 10^7 full pairs, and retention trims what was folded), each look folds,
  reads every row and runs the array ``decide``;
- **full read** (the landed ``load_evidence`` + ``decide``), at the sizes of ``--full-sizes``:
  N full pairs (1 KB request, two 1 KB answers) and their verdicts in the streams;
- **cold takeover** on those same streams: a controller with an empty store folds them all.

Each mode runs in a child process (bench/scale/look.py), so its RSS is its own. Medians over
the looks; one JSON line per row with ``--json``. The machine these figures come from is named
with them (a busy shared one makes every figure slower, the ratios less so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis
from redis.utils import HIREDIS_AVAILABLE

from bench.analysis.factories import NOW, experiment
from bench.children import stop_all
from bench.scale.records import write_full, write_history
from tunegate.redis import redis_server_binary

EXPERIMENT = "exp"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--appendonly", "no", "--save", "", "--loglevel", "warning"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _child(
    url: str, mode: str, looks: int, batch: int, parser: str = "default", ticks: int = 30
) -> dict[str, object] | None:
    """The child's figures; None (its error printed on stderr) when it failed."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale.look", url, mode, "--looks", str(looks),
         "--batch", str(batch), "--parser", parser, "--ticks", str(ticks)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        print(f"{mode}: the look failed (exit {out.returncode}):\n{tail}", file=sys.stderr)
        return None
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _prepare(url: str, mode: str, n: int, *, keep_rows: bool = True) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
        if mode == "incremental":
            await write_history(
                client, EXPERIMENT, n, start=NOW - 3600 - n * 0.01,
                policy=experiment().policy, keep_rows=keep_rows,
            )  # fmt: skip
        else:
            await write_full(client, EXPERIMENT, n, prefix="h", start=NOW - 600 - n * 0.01, seed=1)
    finally:
        await client.aclose()


def _print(row: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
        return
    per = f", {row['fold_us_per_entry']:.0f} us/entry" if "fold_us_per_entry" in row else ""
    if "fold_cpu_ms" in row:
        per += f"; CPU {row['fold_cpu_ms']:.0f} ms + redis {row['redis_cpu_ms']:.0f} ms"
    if "between_cpu_ms" in row:
        per += (
            f"; between looks: ticks of {row['tick_ms']:.1f} ms, CPU {row['between_cpu_ms']:.0f}"
            f" ms + redis {row['between_redis_cpu_ms']:.0f} ms a minute"
        )
    print(
        f"{row['mode']:>12} {row['n']:>10,} judged  look {row['total_ms']:>10.1f} ms"
        f"  (fold {row['fold_ms']:.1f}{per}, read {row['read_ms']:.1f}, decide"
        f" {row['decide_ms']:.1f})  peak RSS {row['peak_rss_mb']:.0f} MB"
        f" (after imports {row['rss_before_mb']:.0f} MB)  {row.get('parser', '')}",
        flush=True,
    )


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sizes", default="1e4,1e5,1e6,1e7", help="judged pairs of history")
    parser.add_argument("--full-sizes", default="1e4,1e5", help="sizes for the full read")
    parser.add_argument(
        "--row-sizes", default="1e4,1e5", help="sizes that keep rows and run the rows look"
    )
    parser.add_argument(
        "--parsers", default="python,hiredis", help="reply parsers for the state look"
    )
    parser.add_argument("--looks", type=int, default=5, help="steady-state looks per size")
    parser.add_argument("--full-looks", type=int, default=1, help="full-read and cold looks")
    parser.add_argument("--batch", type=int, default=6000, help="new pairs before each look")
    parser.add_argument(
        "--ticks", type=int, default=30, help="continuous-folder ticks per look (folded mode)"
    )
    parser.add_argument(
        "--modes", default="state,folded,incremental,full,cold", help="the looks to measure"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-scale-") as data:
        process, url = _start_redis(Path(data))
        try:
            rows_at = set(_ints(args.row_sizes))
            parsers = [p for p in args.parsers.split(",") if p != "hiredis" or HIREDIS_AVAILABLE]
            modes = set(args.modes.split(","))
            for n in _ints(args.sizes):
                for parser_name in parsers:
                    for mode in ("state", "folded"):
                        if mode not in modes:
                            continue
                        asyncio.run(_prepare(url, "incremental", n, keep_rows=n in rows_at))
                        row = _child(url, mode, args.looks, args.batch, parser_name, args.ticks)
                        if row is not None:
                            _print({**row, "n": n}, args.json)
                if n in rows_at and "incremental" in modes:
                    asyncio.run(_prepare(url, "incremental", n))
                    row = _child(url, "incremental", args.looks, args.batch)
                    if row is not None:
                        _print({**row, "n": n}, args.json)
            for n in _ints(args.full_sizes) if modes & {"full", "cold"} else []:
                asyncio.run(_prepare(url, "full", n))
                for mode in ("full", "cold"):
                    if mode not in modes:
                        continue
                    row = _child(url, mode, args.full_looks, args.batch)
                    if row is not None:
                        _print({**row, "n": n}, args.json)
        finally:
            stop_all([process])


if __name__ == "__main__":
    main()
