"""Fault drills: a broken candidate must cost served requests nothing, and every pair names it.

    python -m bench.proxy.drills              # per fault 3 x (8 s healthy, 8 s fault)
    python -m bench.proxy.drills --repeats 1 --seconds 20   # one long pair of phases per fault
    python -m bench.proxy.drills --quick      # 1 x 5 s phases: a bounded pilot (about 3 minutes)
    python -m bench.proxy.drills --timeline   # also each phase's requests over 50 ms per second

For each topology (``own``: control and candidate on their own model servers; ``shared``: one
server serving both, the vLLM base + LoRA deployment) it measures the healthy maximum (closed
loop, c=32, 100 % mirroring) and then runs, at a fixed OPEN-loop offered load of half of it, a
healthy phase and a fault phase back to back for each fault: the candidate ``hung`` (never
answers; shadow timeout 2 s), ``error`` (500 at once), ``slow`` (1 s answers) and ``down`` (its
server killed; own topology only, since one server cannot be down for one model). Open loop: a
request is sent at its scheduled time whatever happened to earlier ones, and its latency counts
from that time, so a slower phase cannot hide behind fewer requests.

Each fault is measured ``--repeats`` times, a healthy phase and its fault phase back to back each
time: on a shared machine a neighbour's burst lands in one phase and moves that pair's ratio by
tens of percent, so the verdict is the MEDIAN of the per-repeat p99 ratios (the pooled p99 of all
healthy against all fault latencies is printed beside it).

Per phase: served p50/p99 and errors, the p99 ratio fault/healthy (target <= 1.25, 0 errors),
proxy CPU per request, garbage collections and their pauses (``tunegate_gc_pause_seconds`` from
the proxy's /metrics, timed with gc.callbacks), and the pairs: every request must be a logged
pair, with what happened to the candidate named (its error word, or the reason no copy was sent).
The proxy is ``tunegate serve`` from this tree. Results go to bench/results/drills-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.children import stop_all
from cli.server import free_port
from tunegate import keys
from tunegate.records import Pair, decode_pair
from tunegate.redis import EmbeddedRedis

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "drill"
CANDIDATE_MODEL = "drill-ft"
SHADOW_TIMEOUT_S = 2.0
SLOW_S = 0.05  # a request this late is counted in its phase's timeline
BODY = json.dumps(
    {"model": EXPERIMENT, "messages": [{"role": "user", "content": "Say something."}]}
).encode()


@dataclass
class Phase:
    """One phase's figures."""

    name: str
    offered_rps: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    gc_collections: dict[str, float] = field(default_factory=dict)
    gc_pause_ms: dict[str, float] = field(default_factory=dict)  # total per generation
    gc_pause_max_ms: float = 0.0  # upper bound of the slowest bucket hit
    pairs: int = 0
    candidate: dict[str, int] = field(default_factory=dict)  # what the pairs say of the arm
    #: requests over SLOW_S by the second (of the phase) they were scheduled in: one stall
    #: shows as one burst, a slower path as a spread (``--timeline`` prints it)
    slow_per_second: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, for pooling


def _percentile_ms(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies) or [0.0]
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def _pool(name: str, phases: list[Phase]) -> Phase:
    """The repeats of one phase as one: sums, and percentiles of all latencies together."""
    latencies = [x for phase in phases for x in phase.latencies]
    requests = sum(phase.requests for phase in phases)
    summed: dict[str, dict[str, float]] = {"gc_collections": {}, "gc_pause_ms": {}}
    named: Counter[str] = Counter()
    for phase in phases:
        for attr, into in summed.items():
            for key, value in getattr(phase, attr).items():
                into[key] = round(into.get(key, 0.0) + value, 2)
        named.update(phase.candidate)
    cpu = sum(phase.cpu_ms_per_request * phase.requests for phase in phases)
    return Phase(
        name=name,
        offered_rps=phases[0].offered_rps,
        requests=requests,
        errors=sum(phase.errors for phase in phases),
        p50_ms=_percentile_ms(latencies, 0.5),
        p99_ms=_percentile_ms(latencies, 0.99),
        cpu_ms_per_request=round(cpu / max(requests, 1), 3),
        gc_collections=summed["gc_collections"],
        gc_pause_ms=summed["gc_pause_ms"],
        gc_pause_max_ms=max(phase.gc_pause_max_ms for phase in phases),
        pairs=sum(phase.pairs for phase in phases),
        candidate=dict(named),
        latencies=latencies,
    )


def _figures(phase: Phase) -> dict[str, Any]:
    return {k: v for k, v in asdict(phase).items() if k != "latencies"}


@dataclass
class Drill:
    """One fault's repeats: the pooled phases and the per-repeat p99 ratios."""

    healthy: Phase
    fault: Phase
    ratios: list[float]

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "healthy": _figures(self.healthy),
            "fault": _figures(self.fault),
            "p99_ratios": [round(r, 3) for r in self.ratios],
            "median_p99_ratio": round(self.median_ratio, 3),
        }


class Process:
    """A child process that is terminated on exit."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, health: str) -> None:
        self.popen = subprocess.Popen(self.args, cwd=ROOT, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(health, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.args} did not come up")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.popen is not None:
            stop_all([self.popen])
        self.popen = None

    def cpu_seconds(self) -> float:
        assert self.popen is not None
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Topology:
    """The model servers, the proxy in front of them and Redis, for one topology."""

    def __init__(self, name: str, redis_url: str, workdir: Path) -> None:
        self.name = name
        self.redis_url = redis_url
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.env = env
        count = 2 if name == "own" else 1
        self.ports = [free_port() for _ in range(count)]
        self.servers = [
            Process([sys.executable, "-m", "bench.proxy.fault_server", str(p)], env)
            for p in self.ports
        ]
        self.proxy_port = free_port()
        config = {
            "log_level": "error",
            "redis": {"url": redis_url},
            "upstreams": {
                "control": {"base_url": f"http://127.0.0.1:{self.ports[0]}/v1"},
                "candidate": {"base_url": f"http://127.0.0.1:{self.ports[-1]}/v1"},
            },
            "experiments": [
                {
                    "name": EXPERIMENT,
                    "control": {"upstream": "control"},
                    "candidate": {"upstream": "candidate", "model": CANDIDATE_MODEL},
                    "mirror_rate": 1.0,
                }
            ],
            "proxy": {
                "port": self.proxy_port,
                "mirror": {"timeout_seconds": SHADOW_TIMEOUT_S},
                "pairlog": {"buffer_size": 50_000},
            },
        }
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.proxy = Process([sys.executable, "-m", "cli", "serve", "--config", str(path)], env)

    @property
    def candidate_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[-1]}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}/v1/chat/completions"

    def start(self) -> None:
        for server, port in zip(self.servers, self.ports, strict=True):
            server.start(f"http://127.0.0.1:{port}/v1/models")
        self.proxy.start(f"http://127.0.0.1:{self.proxy_port}/healthz")

    def stop(self) -> None:
        self.proxy.stop()
        for server in self.servers:
            server.stop()

    def fault(self, fault: str) -> None:
        """Apply ``fault`` to the candidate (``down``: kill its server; ``ok``: all healthy)."""
        candidate = self.servers[-1]
        if fault == "down":
            candidate.stop()
            return
        if candidate.popen is None:
            candidate.start(f"{self.candidate_url}/v1/models")
        model = CANDIDATE_MODEL if fault != "ok" else None
        httpx.post(f"{self.candidate_url}/_fault", json={"fault": fault, "model": model})

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.proxy_port}/metrics", timeout=5).text
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("tunegate_gc_pause_seconds"):
                    key = f"{sample.name}|{sample.labels.get('generation')}"
                    found[f"{key}|{sample.labels.get('le', '')}"] = sample.value
                elif sample.name == "tunegate_pairs_logged_total":
                    found["pairs_logged"] = sample.value
        return found


async def _closed_loop(url: str, seconds: float, concurrency: int = 32) -> float:
    """Requests per second at ``concurrency`` in a closed loop (the healthy maximum)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                async with session.post(url, data=BODY, headers=_JSON) as response:
                    await response.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


_JSON = {"content-type": "application/json"}


async def _open_loop(
    url: str, rate: float, seconds: float
) -> tuple[list[float], int, dict[int, int]]:
    """Latencies (from each request's scheduled time) and the error count at ``rate``/s.

    The collector is off while the phase runs: this process holds every request's task until
    the end, so its own full collections took 50-60 ms once per 8 s phase, and every request
    scheduled during one counted that pause as proxy latency (that one stall set the p99 of
    whichever phase it fell in: per-repeat ratios from 0.07 to 7 with the proxy unchanged)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return await _scheduled(url, rate, seconds)
    finally:
        gc.enable()
        gc.unfreeze()


async def _scheduled(
    url: str, rate: float, seconds: float
) -> tuple[list[float], int, dict[int, int]]:
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:

        async def one(at: float) -> float | None:
            try:
                async with session.post(url, data=BODY, headers=_JSON) as response:
                    await response.read()
                    if response.status != 200:
                        return None
            except (aiohttp.ClientError, TimeoutError):
                return None
            return loop.time() - at

        tasks = []
        start = loop.time() + 0.05
        for i in range(int(rate * seconds)):
            at = start + i / rate
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        results = await asyncio.gather(*tasks)
    latencies = [r for r in results if r is not None]
    slow: Counter[int] = Counter(
        int(i / rate) for i, r in enumerate(results) if r is not None and r > SLOW_S
    )
    return latencies, len(results) - len(latencies), dict(sorted(slow.items()))


def _gc_delta(
    before: dict[str, float], after: dict[str, float]
) -> tuple[dict[str, float], dict[str, float], float]:
    collections: dict[str, float] = {}
    pauses: dict[str, float] = {}
    worst = 0.0
    buckets: dict[str, list[tuple[float, float]]] = {}
    for key, value in after.items():
        if not key.startswith("tunegate_gc_pause_seconds"):
            continue
        name, generation, le = key.split("|")
        delta = value - before.get(key, 0.0)
        if name.endswith("_count"):
            collections[generation] = delta
        elif name.endswith("_sum"):
            pauses[generation] = round(delta * 1000, 2)
        elif name.endswith("_bucket"):
            buckets.setdefault(generation, []).append((float(le), delta))
    for series in buckets.values():
        series.sort()
        previous = 0.0
        for bound, cumulative in series:
            if cumulative > previous:
                worst = max(worst, bound)
            previous = cumulative
    return collections, pauses, worst * 1000


def _pairs_since(
    redis_url: str, last_id: str, expected: int, wait_s: float
) -> tuple[list[Pair], str]:
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + wait_s
    entries: list[Any] = []
    while True:
        entries = client.xrange(keys.pairs(EXPERIMENT), min=f"({last_id}")  # type: ignore[assignment]
        if len(entries) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    new_last = entries[-1][0].decode() if entries else last_id
    # counted: the stream keeps only what is newer, so the drill's Redis stays small (it shares
    # the two cores with the proxy, and a fork to rewrite gigabytes of pairs stalls both)
    client.xtrim(keys.pairs(EXPERIMENT), minid=new_last, approximate=False)
    client.close()
    return [decode_pair(fields) for _, fields in entries], new_last


def _phase(
    topology: Topology, name: str, rate: float, seconds: float, last_id: str
) -> tuple[Phase, str]:
    before = topology.metrics()
    cpu = topology.proxy.cpu_seconds()
    latencies, errors, slow = asyncio.run(_open_loop(topology.url, rate, seconds))
    cpu = topology.proxy.cpu_seconds() - cpu
    after = topology.metrics()
    collections, pauses, worst = _gc_delta(before, after)
    requests = len(latencies) + errors
    pairs, last_id = _pairs_since(topology.redis_url, last_id, requests, SHADOW_TIMEOUT_S + 5)
    named: Counter[str] = Counter()
    for pair in pairs:
        arm = pair.candidate
        if arm is None:
            named[f"skipped:{pair.mirror_skipped}"] += 1
        else:
            named["ok" if arm.ok else str(arm.error)] += 1
    phase = Phase(
        name=name,
        offered_rps=round(rate, 1),
        requests=requests,
        errors=errors,
        p50_ms=_percentile_ms(latencies, 0.5),
        p99_ms=_percentile_ms(latencies, 0.99),
        cpu_ms_per_request=round(cpu * 1000 / max(requests, 1), 3),
        gc_collections=collections,
        gc_pause_ms=pauses,
        gc_pause_max_ms=worst,
        pairs=len(pairs),
        candidate=dict(named),
        slow_per_second=slow,
        latencies=latencies,
    )
    return phase, last_id


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy.drills", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="one repeat of 5 s phases, 3 s probe")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase (8)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="healthy/fault pairs per fault (3)"
    )
    parser.add_argument("--topologies", default="own,shared")
    parser.add_argument("--faults", default="hung,error,slow,down")
    parser.add_argument(
        "--rate", type=float, default=None, help="offered req/s (default: half max)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print each phase's requests over 50 ms by the second they were scheduled in",
    )
    return parser.parse_args()


def _print(topology: str, healthy_max: float, rows: list[tuple[str, Drill]]) -> None:
    print(f"\n{topology}: healthy max {healthy_max:.0f} req/s (closed loop, c=32), offered half")
    head = (
        f"{'fault':7} {'req':>6} {'err':>4} {'p50 ms':>14} {'p99 ms':>16} {'p99x':>5} {'med':>5} "
        f"{'cpu ms/req':>12} {'gc2 n':>7} {'gc ms':>13} {'gc max':>7} {'pairs':>11}  candidate"
    )
    print(head)
    for fault, drill in rows:
        healthy, broken = drill.healthy, drill.fault
        gc_h = sum(healthy.gc_pause_ms.values())
        gc_f = sum(broken.gc_pause_ms.values())
        ratio = broken.p99_ms / healthy.p99_ms if healthy.p99_ms else float("nan")
        print(
            f"{fault:7} {broken.requests:>6} {broken.errors:>4} "
            f"{healthy.p50_ms:>6.1f}/{broken.p50_ms:<7.1f}"
            f" {healthy.p99_ms:>7.1f}/{broken.p99_ms:<8.1f}"
            f" {ratio:>5.2f} {drill.median_ratio:>5.2f}"
            f" {healthy.cpu_ms_per_request:>5.2f}/{broken.cpu_ms_per_request:<6.2f}"
            f" {healthy.gc_collections.get('2', 0):>3.0f}/{broken.gc_collections.get('2', 0):<3.0f}"
            f" {gc_h:>6.1f}/{gc_f:<6.1f} {broken.gc_pause_max_ms:>7.1f}"
            f" {broken.pairs:>5}/{broken.requests:<5}  {broken.candidate}"
        )
    print("(healthy/fault in each pair of columns, pooled over the repeats; p99x: pooled p99")
    print(" ratio; med: median of the per-repeat p99 ratios, the verdict (target <= 1.25);")
    print(" gc2 n: full collections; gc max: slowest collection's histogram bucket bound;")
    print(" pairs: logged pairs / requests)")


def main() -> None:
    args = _parse()
    seconds = args.seconds or (5.0 if args.quick else 8.0)
    repeats = args.repeats or (1 if args.quick else 3)
    probe = 3.0 if args.quick else 8.0
    results: dict[str, Any] = {
        "seconds": seconds,
        "repeats": repeats,
        "quick": args.quick,
        "load_average": os.getloadavg(),
        "topologies": {},
    }
    with tempfile.TemporaryDirectory(prefix="tg-drills-") as tmp:
        store = EmbeddedRedis(Path(tmp) / "redis", port=free_port())
        redis_url = store.start()
        # no AOF rewrite in the drill: at tens of thousands of pairs a phase its fork and its
        # child's writing share the two cores with the proxy (a 30 s shared/hung phase once had
        # a p99 of 235 ms against 11 ms healthy, and a rerun without the earlier phases' data none)
        with redis.Redis.from_url(redis_url) as admin:
            admin.config_set("auto-aof-rewrite-percentage", 0)
        try:
            for name in args.topologies.split(","):
                topology = Topology(name, redis_url, Path(tmp))
                topology.start()
                try:
                    asyncio.run(_closed_loop(topology.url, 1.0))  # warm up
                    healthy_max = asyncio.run(_closed_loop(topology.url, probe))
                    rate = args.rate or healthy_max / 2
                    rows: list[tuple[str, Drill]] = []
                    last_id = "0-0"
                    for fault in args.faults.split(","):
                        if fault == "down" and name == "shared":
                            continue  # one server cannot be down for one of its models
                        healthy: list[Phase] = []
                        broken: list[Phase] = []
                        for _ in range(repeats):
                            for state, label, phases in (
                                ("ok", "healthy", healthy),
                                (fault, fault, broken),
                            ):
                                topology.fault(state)
                                phase, last_id = _phase(topology, label, rate, seconds, last_id)
                                phases.append(phase)
                                if args.timeline:
                                    print(
                                        f"    {name}/{phase.name}: p99 {phase.p99_ms} ms,"
                                        f" over 50 ms by second {phase.slow_per_second}",
                                        flush=True,
                                    )
                        topology.fault("ok")
                        pairs = zip(healthy, broken, strict=True)
                        ratios = [b.p99_ms / h.p99_ms for h, b in pairs if h.p99_ms]
                        drill = Drill(_pool("healthy", healthy), _pool(fault, broken), ratios)
                        rows.append((fault, drill))
                        print(
                            f"  {name}/{fault}: p99 ratios "
                            + ", ".join(f"{r:.2f}" for r in ratios),
                            flush=True,
                        )
                    _print(name, healthy_max, rows)
                    results["topologies"][name] = {
                        "healthy_max_rps": healthy_max,
                        "offered_rps": rate,
                        "drills": {f: drill.summary() for f, drill in rows},
                    }
                finally:
                    topology.stop()
        finally:
            store.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"drills-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
