"""`python -m bench.judge`: the judge plane's benchmarks, one command.

- throughput: verdicts/s of the worker machinery with 1 and 4 workers against an instant judge,
  for the judge's `openai` SDK client (aiohttp transport, and httpx) and, in the same run, the
  former hand-written aiohttp client;
- savings: the judge calls the identical-answer shortcut and the cache save on a re-run;
- rouge: ROUGE-L per arm at 1,500 and 20,000 tokens against the LCS it replaced
  (bench.judge.rouge);
- drill: a judge answering 429 with Retry-After for two minutes, then recovering
  (bench.judge.drill; ``--outage`` sets its length).

Everything runs on this machine (embedded redis-server, the instant judge under uvicorn and the
workers as separate processes), so the figures are the overhead of our code, not of a model.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson
import redis
import yaml

from bench.children import stop_all
from tunegate import keys
from tunegate.records import Arm, ArmResult, Endpoint, Pair, encode
from tunegate.redis import EmbeddedRedis

EXP = "bench"


def _body(text: str) -> str:
    message = {"role": "assistant", "content": text}
    return orjson.dumps(
        {"choices": [{"index": 0, "finish_reason": "stop", "message": message}]}
    ).decode()


def make_pairs(n: int, identical_share: float, seed: str) -> list[Pair]:
    pairs = []
    for i in range(n):
        candidate = f"answer {seed} {i}: " + "word " * 40
        same = i < int(n * identical_share)
        control = candidate if same else f"other {seed} {i}: " + "text " * 30
        pairs.append(Pair(
            id=uuid.uuid4().hex, experiment=EXP, endpoint=Endpoint.CHAT,
            request=orjson.dumps({"model": EXP, "messages": [
                {"role": "user", "content": f"question {seed} {i}"}]}).decode(),
            served_arm=Arm.CONTROL,
            candidate=ArmResult(upstream="ft", model="ft", status=200, body=_body(candidate)),
            control=ArmResult(upstream="base", model="base", status=200, body=_body(control)),
        ))  # fmt: skip
    return pairs


def load(client: redis.Redis, pairs: list[Pair]) -> None:
    pipe = client.pipeline(transaction=False)
    for pair in pairs:
        pipe.xadd(keys.pairs(EXP), encode(pair))  # type: ignore[arg-type]  # bytes fields
    pipe.execute()


def run_workers(config: Path, count: int, client: str = "sdk") -> tuple[float, int]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.judge.worker_proc", str(config), f"w{i}", client],
            stdout=subprocess.PIPE,
        )
        for i in range(count)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"worker exited {proc.returncode}")
        results.append(orjson.loads(out.splitlines()[-1]))
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    return elapsed, sum(r["verdicts"] for r in results)


def judge_calls(judge_url: str) -> int:
    return int(httpx.get(f"{judge_url}/calls").json()["calls"])


def write_config(path: Path, redis_url: str, judge_url: str) -> Path:
    path.write_text(yaml.safe_dump({
        "redis": {"url": redis_url},
        "upstreams": {"base": {"base_url": "http://127.0.0.1:1/v1"},
                      "ft": {"base_url": "http://127.0.0.1:2/v1"}},
        "experiments": [{"name": EXP, "control": {"upstream": "base"},
                         "candidate": {"upstream": "ft"}}],
        "judge": {"endpoint": {"model": "instant-judge", "base_url": f"{judge_url}/v1"},
                  "concurrency": 32, "batch_size": 64, "read_block_ms": 100,
                  "heartbeat_seconds": 5},
    }))  # fmt: skip
    return path


def wait_up(url: str, deadline: float) -> None:
    while True:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def throughput(client: redis.Redis, config: Path, args: argparse.Namespace) -> None:
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):  # interleaved, so that load on the machine hits both alike
        for kind in args.clients:
            for count in args.workers:
                client.flushall()
                load(client, make_pairs(args.pairs, 0.0, uuid.uuid4().hex))
                elapsed, verdicts = run_workers(config, count, kind)
                assert verdicts == args.pairs, (verdicts, args.pairs)
                rates.setdefault((kind, count), []).append(verdicts / elapsed)
    print(f"pairs per run: {args.pairs}, each judged by the pairwise scorer (2 calls)")
    base_kind, base_count = args.clients[-1], args.workers[0]
    base = statistics.median(rates[(base_kind, base_count)])
    for (kind, count), values in rates.items():
        median = statistics.median(values)
        print(f"{kind:>8} client, {count} worker(s): median {median:.0f} verdicts/s "
              f"(runs: {', '.join(f'{v:.0f}' for v in values)}; "
              f"x{median / base:.2f} vs {base_kind} with {base_count})")  # fmt: skip
    for count in args.workers:
        for kind in args.clients[:-1]:
            ratio = statistics.median(rates[(kind, count)]) / statistics.median(
                rates[(base_kind, count)]
            )
            print(f"{kind} / {base_kind} with {count} worker(s): x{ratio:.2f}")


def savings(client: redis.Redis, config: Path, judge_url: str, args: argparse.Namespace) -> None:
    client.flushall()
    pairs = make_pairs(args.pairs, 0.3, "savings")
    load(client, pairs)
    before = judge_calls(judge_url)
    run_workers(config, 1)
    first = judge_calls(judge_url) - before
    load(client, [p.model_copy(update={"id": uuid.uuid4().hex}) for p in pairs])
    before = judge_calls(judge_url)
    run_workers(config, 1)
    rerun = judge_calls(judge_url) - before
    naive = 2 * len(pairs)
    print(f"calls saved: first run {first} of {naive} naive calls "
          f"(identical shortcut saved {naive - first}, {(naive - first) / naive:.0%}); "
          f"re-run {rerun} calls (cache saved {naive - rerun - (naive - first)} "
          f"of the {first} the first run made)")  # fmt: skip


SECTIONS = ("throughput", "savings", "rouge", "drill")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judge")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--clients", nargs="+", default=["sdk", "sdk-httpx", "aiohttp"],
                        choices=("sdk", "sdk-httpx", "aiohttp"))  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--outage", type=float, default=120.0, help="drill: seconds of 429s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        from cli.server import free_port

        server = EmbeddedRedis(Path(tmp) / "redis", port=free_port())
        redis_url = server.start()
        port = free_port()
        judge = subprocess.Popen([sys.executable, "-m", "bench.judge.instant", str(port)])
        judge_url = f"http://127.0.0.1:{port}"
        try:
            wait_up(f"{judge_url}/calls", time.monotonic() + 30)
            client = redis.Redis.from_url(redis_url)
            config = write_config(Path(tmp) / "bench.yaml", redis_url, judge_url)
            if "throughput" in args.only:
                throughput(client, config, args)
            if "savings" in args.only:
                savings(client, config, judge_url, args)
            client.flushall()
            client.close()
        finally:
            stop_all([judge], grace_s=10)
            server.stop()
    if "rouge" in args.only:
        from bench.judge.rouge import report

        report()
    if "drill" in args.only:
        from bench.judge.drill import drill

        drill(outage=args.outage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
