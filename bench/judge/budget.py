"""`python -m bench.judge.budget`: four judge worker processes spend one configured budget.

Four worker processes (the judge's own client) drain more pairs than the budget allows in
``--seconds``, against the judge double (every call 100 prompt + 20 completion tokens, priced by
the endpoint's per-million-token costs). Two runs: the cost per hour binding, then the requests
per minute binding. Reported for each: what the double answered from the first answer to the end
of the window, against the configured rate times the window plus one burst
(``budget_burst_seconds``); the target is within 5 %. Without the shared budget each worker
would spend the whole budget by itself (4x). Pairs past the budget stay pending, never dropped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import yaml

from bench.children import stop_all
from bench.judge.__main__ import EXP, load, make_pairs
from bench.servers.judge_double import JudgeDouble, Step
from cli.server import free_port, serve_in_thread
from tunegate import keys
from tunegate.redis import EmbeddedRedis

__all__ = ["spend"]

WORKERS = 4
TOKENS = (100, 20)
#: USD per million tokens: one call costs (100 * 10 + 20 * 30) / 1e6 = $0.0016
PRICES = (10.0, 30.0)
CALL_COST = (TOKENS[0] * PRICES[0] + TOKENS[1] * PRICES[1]) / 1e6


def _config(path: Path, redis_url: str, judge_url: str, limits: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({
        "redis": {"url": redis_url},
        "upstreams": {"base": {"base_url": "http://127.0.0.1:1/v1"},
                      "ft": {"base_url": "http://127.0.0.1:2/v1"}},
        "experiments": [{"name": EXP, "control": {"upstream": "base"},
                         "candidate": {"upstream": "ft"}}],
        "judge": {"endpoint": {"model": "budget-judge", "base_url": f"{judge_url}/v1",
                               "input_cost_per_mtok": PRICES[0],
                               "output_cost_per_mtok": PRICES[1]},
                  "concurrency": 16, "batch_size": 32, "read_block_ms": 100,
                  "claim_idle_seconds": 30, **limits},
    }))  # fmt: skip
    return path


def spend(limits: dict[str, Any], per_second: float, seconds: float) -> tuple[float, float, int]:
    """(calls answered in the window, calls the budget allows in it, pairs dropped or dead)."""
    double = JudgeDouble(policy=lambda prompt: Step("A>B", tokens=TOKENS))
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(double.app) as judge_url:
        server = EmbeddedRedis(Path(tmp) / "redis", port=free_port())
        redis_url = server.start()
        client = redis.Redis.from_url(redis_url)
        try:
            pairs = int(per_second * seconds) + 200  # more than the budget lets through
            load(client, make_pairs(pairs, 0.0, "budget"))
            config = _config(Path(tmp) / "budget.yaml", redis_url, judge_url, limits)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "bench.judge.worker_proc", str(config), f"b{i}"],
                    stdout=subprocess.DEVNULL,
                )
                for i in range(WORKERS)
            ]
            try:
                while not double.answers:
                    time.sleep(0.05)
                first = double.answers[0][0]
                time.sleep(max(0.0, first + seconds - time.monotonic()))
                answered = sum(1 for at, status in double.answers
                               if status == 200 and at <= first + seconds)  # fmt: skip
            finally:
                stop_all(procs, grace_s=2)
            lost = int(client.xlen(keys.dead(EXP)))
        finally:
            client.close()
            server.stop()
    burst = max(1.0, per_second * 1.0)  # budget_burst_seconds: 1 (the default)
    return float(answered), per_second * seconds + burst, lost


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judge.budget")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    runs: list[tuple[str, dict[str, Any], float]] = [
        # $0.0016 a call, $46.08 an hour: 8 calls a second for all four workers together
        ("cost_per_hour_usd", {"cost_per_hour_usd": 46.08}, 46.08 / 3600 / CALL_COST),
        ("requests_per_minute", {"requests_per_minute": 360}, 360 / 60),
    ]
    ok = True
    print(f"{WORKERS} judge worker processes, one budget, {args.seconds:g} s window "
          "(busy shared 2-core machine)")  # fmt: skip
    for name, limits, per_second in runs:
        answered, allowed, lost = spend(limits, per_second, args.seconds)
        ratio = answered / allowed
        ok &= abs(ratio - 1) <= 0.05 and lost == 0
        print(f"  {name}={limits[name]}: {answered:.0f} calls answered, budget "
              f"allows {allowed:.0f} ({per_second:g}/s x {args.seconds:g} s + 1 s burst): "
              f"{ratio:.3f} of the budget; dead letters {lost}")  # fmt: skip
    print(f"  budget bench {'passed' if ok else 'FAILED'} (target: within 5 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
