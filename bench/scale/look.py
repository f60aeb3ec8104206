"""One controller's looks at an experiment, timed, in a process of its own (so RSS is its own).

``python -m bench.scale.look URL MODE --looks R --batch B`` prints one JSON line:

- ``incremental``: before each look, ``B`` new full pairs and their verdicts arrive (a minute at
  100 requests/s by default); the look folds them, reads the rows and decides. The streams are
  then trimmed to nothing, as retention does (the store already holds their rows).
- ``cold``: a controller with no state takes over full streams: the store is emptied before each
  look, which then folds everything the streams hold.
- ``full``: the landed path, ``load_evidence`` (the whole streams, decoded) and ``decide``.
- ``state``: as ``incremental``, but the look is the controller's: the fold moves the decision
  state forward (analysis/evidence_state.py) and ``decide_from_state`` reads only it (and the
  feedback rows): no pair or judged row is read.
- ``folded``: the look of ``tunegate decide --loop`` with its continuous folder
  (analysis/folder.py): the minute's ``B`` pairs arrive in ``--ticks`` slices, each folded as the
  folder does, and the look folds only the last slice (what arrived since the last tick) and
  decides from the state. The folds between looks are reported too: their CPU per look interval
  (this process's and redis-server's) and their median wall time per tick.

``--parser`` picks redis-py's reply parser: ``python`` (its pure-Python RESP parser),
``hiredis`` (needs the hiredis package) or ``default`` (hiredis when installed).

The state look also reports the fold's CPU time, this process's and redis-server's (from /proc, in
10 ms ticks; medians over the looks). Peak RSS is the process's high-water mark during the look
(reset before it through /proc/self/clear_refs), beside the resident size after the imports and a
warm-up decide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio.connection import DefaultParser

from analysis.decide import decide
from analysis.decide_state import decide_from_state
from analysis.evidence import build_evidence, load_evidence
from analysis.evidence_store import EvidenceStore
from bench.analysis.factories import NOW, experiment
from bench.scale.records import write_full
from tunegate import keys

EXPERIMENT = "exp"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _state_look(client: aioredis.Redis) -> dict[str, float]:
    config = experiment()
    server = int((await client.info("server"))["process_id"])  # bench.scale's own redis-server
    cpu, server_cpu = time.process_time(), _cpu_s(server)
    started = time.perf_counter()
    store = EvidenceStore(client, EXPERIMENT, policy=config.policy, stage=(0.0, config.ab_weight))
    entries = await store.catch_up()
    folded = time.perf_counter()
    cpu, server_cpu = time.process_time() - cpu, _cpu_s(server) - server_cpu
    state, counters = await store.decision_state()
    feedback = await store.feedback_rows()
    read = time.perf_counter()
    decision = decide_from_state(config, None, state, feedback, counters, NOW)
    done = time.perf_counter()
    assert decision.evidence["pairs"] == state.pairs
    return {
        "total_ms": 1e3 * (done - started),
        "fold_ms": 1e3 * (folded - started),
        "read_ms": 1e3 * (read - folded),
        "decide_ms": 1e3 * (done - read),
        "fold_us_per_entry": 1e6 * (folded - started) / max(entries, 1),
        # CPU of the fold: this process's and redis-server's (a loaded machine inflates the wall
        # time by its waiting for a core, these much less)
        "fold_cpu_ms": 1e3 * cpu,
        "redis_cpu_ms": 1e3 * server_cpu,
        "judged": state.judge.n,
    }


async def _fold_between(client: aioredis.Redis, batch: int, ticks: int, k: int) -> dict[str, float]:
    """The continuous folder's ticks of one look interval: ``ticks - 1`` slices of the interval's
    ``batch`` pairs, each folded as it arrives; the last slice is written and left to the look."""
    config = experiment()
    server = int((await client.info("server"))["process_id"])
    size = batch // ticks
    cpu = server_cpu = 0.0
    tick_ms: list[float] = []
    for t in range(ticks):
        start = NOW - 60 + t * 60 / ticks
        await write_full(
            client, EXPERIMENT, size, prefix=f"look{k}-{t}-", start=start, seed=k * ticks + t
        )
        if t == ticks - 1:
            break  # what arrived since the last tick: the look folds it
        cpu0, server0, started = time.process_time(), _cpu_s(server), time.perf_counter()
        store = EvidenceStore(
            client, EXPERIMENT, policy=config.policy, stage=(0.0, config.ab_weight)
        )
        await store.catch_up()
        tick_ms.append(1e3 * (time.perf_counter() - started))
        cpu += time.process_time() - cpu0
        server_cpu += _cpu_s(server) - server0
    return {
        "tick_ms": float(np.median(tick_ms)) if tick_ms else 0.0,
        "between_cpu_ms": 1e3 * cpu,
        "between_redis_cpu_ms": 1e3 * server_cpu,
    }


async def _look(client: aioredis.Redis, mode: str) -> dict[str, float]:
    if mode in ("state", "folded"):
        return await _state_look(client)
    config = experiment()
    started = time.perf_counter()
    if mode == "full":
        evidence = await load_evidence(client, EXPERIMENT)
        folded = time.perf_counter()
        read = folded
    else:
        store = EvidenceStore(client, EXPERIMENT)
        await store.catch_up()
        folded = time.perf_counter()
        evidence = await store.evidence()
        read = time.perf_counter()
    decision = decide(config, None, evidence, NOW)
    done = time.perf_counter()
    assert decision.evidence["pairs"] == evidence.pairs.n
    return {
        "total_ms": 1e3 * (done - started),
        "fold_ms": 1e3 * (folded - started),
        "read_ms": 1e3 * (read - folded),
        "decide_ms": 1e3 * (done - read),
        "judged": evidence.judge.n,
    }


_PARSERS = {"python": _AsyncRESP2Parser, "hiredis": _AsyncHiredisParser}


async def main(
    url: str, mode: str, looks: int, batch: int, parser: str = "default", ticks: int = 30
) -> dict[str, object]:
    extra = {"parser_class": _PARSERS[parser]} if parser in _PARSERS else {}
    client = aioredis.Redis.from_url(url, **extra)  # type: ignore[arg-type]  # kwargs pass through
    try:
        decide(experiment(), None, build_evidence(EXPERIMENT, [], [], []), NOW)  # warm imports
        rss_before = _status_mb("VmRSS")
        rows: list[dict[str, float]] = []
        peaks: list[float] = []
        between: list[dict[str, float]] = []
        for k in range(looks):
            if mode == "folded":
                between.append(await _fold_between(client, batch, ticks, k))
            elif mode in ("incremental", "state"):
                await write_full(
                    client, EXPERIMENT, batch, prefix=f"look{k}-", start=NOW - 60, seed=100 + k
                )
            elif mode == "cold":
                await EvidenceStore(client, EXPERIMENT).reset()
            _reset_peak()
            rows.append(await _look(client, mode) | (between[-1] if between else {}))
            peaks.append(_status_mb("VmHWM"))
            if mode in ("incremental", "state", "folded"):
                for stream in (keys.pairs(EXPERIMENT), keys.verdicts(EXPERIMENT)):
                    await client.xtrim(stream, maxlen=0)
        out: dict[str, object] = {"mode": mode, "looks": looks, "judged": rows[-1]["judged"]}
        out["parser"] = client.connection_pool.connection_kwargs.get("parser_class", DefaultParser)
        out["parser"] = getattr(out["parser"], "__name__", str(out["parser"]))
        medians = ("total_ms", "fold_ms", "read_ms", "decide_ms", "fold_us_per_entry")
        cpus = ("fold_cpu_ms", "redis_cpu_ms", "tick_ms", "between_cpu_ms", "between_redis_cpu_ms")
        for key in (*medians, *cpus):
            if key in rows[0]:
                out[key] = float(np.median([r[key] for r in rows]))
        out["rss_before_mb"] = rss_before
        out["peak_rss_mb"] = float(np.median(peaks))
        return out
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scale.look")
    parser.add_argument("url")
    parser.add_argument("mode", choices=["incremental", "cold", "full", "state", "folded"])
    parser.add_argument("--looks", type=int, default=3)
    parser.add_argument("--batch", type=int, default=6000)
    parser.add_argument("--parser", choices=["default", "python", "hiredis"], default="default")
    parser.add_argument("--ticks", type=int, default=30, help="folder ticks per look (folded)")
    args = parser.parse_args()
    result = asyncio.run(main(args.url, args.mode, args.looks, args.batch, args.parser, args.ticks))
    print(json.dumps(result))
