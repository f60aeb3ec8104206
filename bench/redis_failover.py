"""`python -m bench.redis_failover`: a cluster master fails over while pairs flow and are judged.

A proxy (cluster client) serves chat requests from a load thread while a judge worker consumes
the pairs; after ``--before`` seconds the master holding the experiment's slot is replaced:
``CLUSTER FAILOVER`` on its replica (coordinated: the replica catches up first), or with
``--kill`` a ``kill -9`` of the master (the replica is elected after the node timeout, 1 s here;
once it serves, the killed node is started again and rejoins as its replica, as an orchestrator
would restart it). ``--wait N`` sets ``redis.wait_replicas`` (a batch counts as written once N
replicas acknowledged it); ``--compare`` runs the drill with 0 and then 1 on the same cluster.
Reported: requests and client errors, pairs missing from the stream (a served request whose pair
was never logged), verdicts missing or duplicated, the longest stall of the pairs stream while
the load went on, and the Redis errors the pair logger and the judge saw. ``failover()`` is the
drill the cluster tests run, shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from prometheus_client import CollectorRegistry

from bench.cluster import LocalCluster
from bench.servers.openai_double import OpenAIDouble
from cli.compose import proxy_app
from cli.server import serve_in_thread
from cli.settings import Settings
from judge.worker import JudgeWorker
from proxy.metrics import UNREPLICATED_REASONS
from tunegate import keys
from tunegate.records import decode_pair, decode_verdict
from tunegate.redis import connect

__all__ = ["FailoverCost", "failover"]

EXP = "failover"
Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class FailoverCost:
    """What one failover cost."""

    requests: int = 0
    client_errors: int = 0
    served_ids: list[str] = field(default_factory=list)
    pairs_missing: int = 0
    pairs_duplicated: int = 0
    verdicts_missing: int = 0
    verdicts_duplicated: int = 0
    longest_stall_s: float = 0.0
    switch_s: float = 0.0  # from the failover command to the new master serving the slot
    pairlog_rewritten: float = 0.0
    pairlog_unreplicated: float = 0.0  # batches WAIT did not confirm (sent again)
    restart_s: float = 0.0  # --kill: from the switch to the killed node back as a replica
    judge_store_errors: int = 0

    @property
    def lost_nothing(self) -> bool:
        return not (self.pairs_missing or self.pairs_duplicated or self.verdicts_missing
                    or self.verdicts_duplicated or self.client_errors)  # fmt: skip


def _settings(cluster: LocalCluster, control: str, candidate: str, wait: int) -> Settings:
    return Settings.model_validate({
        "redis": {"url": cluster.url, "cluster": True, "socket_timeout_seconds": 1.0,
                  "wait_replicas": wait, "wait_timeout_ms": 200},
        "upstreams": {"control": {"base_url": f"{control}/v1"},
                      "candidate": {"base_url": f"{candidate}/v1"}},
        "experiments": [{"name": EXP, "control": {"upstream": "control"},
                         "candidate": {"upstream": "candidate"},
                         "reference_from": "metadata:reference", "scorers": ["normalized"]}],
        "proxy": {"state_refresh_seconds": 0.2, "shutdown_grace_seconds": 5,
                  "pairlog": {"flush_interval_ms": 10}},
        "judge": {"claim_idle_seconds": 5, "read_block_ms": 100},
    })  # fmt: skip


def _load(url: str, stop: threading.Event, cost: FailoverCost) -> None:
    body = {"model": EXP, "messages": [{"role": "user", "content": "q"}],
            "metadata": {"reference": "Hello from control."}, "store": True}  # fmt: skip
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            cost.requests += 1
            try:
                answer = client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError:
                cost.client_errors += 1
                continue
            if answer.status_code != 200:
                cost.client_errors += 1
                continue
            cost.served_ids.append(answer.headers["x-tunegate-pair-id"])


def failover(
    cluster: LocalCluster,
    *,
    before: float = 2.0,
    after: float = 3.0,
    kill: bool = False,
    wait: int = 0,
) -> FailoverCost:
    """Run the drill on a started cluster with replicas; returns its cost."""
    cost = FailoverCost()
    control, candidate = (
        OpenAIDouble("control", record=False),
        OpenAIDouble("candidate", record=False),
    )
    with serve_in_thread(control.app) as c_url, serve_in_thread(candidate.app) as k_url:
        settings = _settings(cluster, c_url, k_url, wait)
        registry = CollectorRegistry()
        with serve_in_thread(proxy_app(settings, registry=registry)) as url:
            asyncio.run(_drill(cluster, settings, url, cost, before, after, kill))
            rewritten = registry.get_sample_value(
                "tunegate_pairs_rewritten_total", {"experiment": EXP}
            )
            unreplicated = sum(
                registry.get_sample_value("tunegate_pair_batches_unreplicated_total",
                                          {"reason": reason}) or 0.0
                for reason in UNREPLICATED_REASONS
            )  # fmt: skip
        cost.pairlog_rewritten = rewritten or 0.0
        cost.pairlog_unreplicated = unreplicated
    return cost


async def _drill(
    cluster: LocalCluster, settings: Settings, url: str, cost: FailoverCost,
    before: float, after: float, kill: bool,
) -> None:  # fmt: skip
    stream = keys.pairs(EXP)
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(url, stop, cost), daemon=True)
    async with connect(settings.redis) as client:
        async with JudgeWorker(settings.judge, settings.experiments, client) as worker:
            judging = asyncio.create_task(worker.run())
            loader.start()
            sampled: list[tuple[float, int]] = []
            master = cluster.master_of(stream)
            replica = cluster.replica_of(master)
            started, switched_at = time.monotonic(), None
            restarting: asyncio.Task[None] | None = None
            while time.monotonic() - started < before + after:
                if switched_at is None and time.monotonic() - started >= before:
                    switched_at = time.monotonic()
                    if kill:
                        await asyncio.to_thread(cluster.kill, master)
                    else:
                        await asyncio.to_thread(cluster.failover, replica)
                if (
                    switched_at is not None
                    and not cost.switch_s
                    and await asyncio.to_thread(cluster.master_of, stream) == replica
                ):
                    cost.switch_s = time.monotonic() - switched_at
                    if kill:  # back as the new master's replica (WAIT needs one), meanwhile
                        restarting = asyncio.create_task(_restart(cluster, master, cost))
                # mid-failover a sample may fail: a missed sample shows as a stall, counted below
                with contextlib.suppress(Exception):
                    sampled.append((time.monotonic(), int(await client.xlen(stream))))
                await asyncio.sleep(0.05)
            stop.set()
            if restarting is not None:
                await restarting
            await asyncio.to_thread(loader.join, 15)
            await _settle(client, stream, len(cost.served_ids))
            worker.stop()
            await asyncio.wait_for(judging, 30)
            cost.judge_store_errors = worker.stats.store_errors
        pairs = Counter(decode_pair(f).id for _, f in cast(Entries, await client.xrange(stream)))
        verdicts = Counter(decode_verdict(f).pair_id for _, f in
                           cast(Entries, await client.xrange(keys.verdicts(EXP))))  # fmt: skip
    cost.pairs_missing = sum(1 for i in cost.served_ids if i not in pairs)
    cost.pairs_duplicated = sum(n - 1 for n in pairs.values() if n > 1)
    cost.verdicts_missing = sum(1 for i in pairs if i not in verdicts)
    cost.verdicts_duplicated = sum(n - 1 for n in verdicts.values() if n > 1)
    cost.longest_stall_s = _longest_stall(sampled)


async def _restart(cluster: LocalCluster, port: int, cost: FailoverCost) -> None:
    started = time.monotonic()
    await asyncio.to_thread(cluster.restart, port)
    cost.restart_s = cost.switch_s + time.monotonic() - started


async def _settle(client: Any, stream: str, served: int, within_s: float = 30.0) -> None:
    """Until every served pair is logged and judged (or ``within_s`` passed)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        logged = int(await client.xlen(stream))
        judged = int(await client.xlen(keys.verdicts(EXP)))
        if logged >= served and judged >= logged:
            return
        await asyncio.sleep(0.1)


def _longest_stall(sampled: list[tuple[float, int]]) -> float:
    """The longest time between two samples at which the stream grew (load never paused)."""
    grew = [at for (at, n), (_, m) in zip(sampled[1:], sampled, strict=False) if n > m]
    return max((b - a for a, b in itertools.pairwise(grew)), default=0.0)


def _print(cost: FailoverCost, kill: bool, wait: int) -> None:
    how = "kill -9 of the master" if kill else "CLUSTER FAILOVER on the replica"
    print(f"redis cluster failover ({how}), redis.wait_replicas {wait}, load from one client "
          f"thread (busy shared 2-core machine, load {os.getloadavg()[0]:.2f})")  # fmt: skip
    print(f"  requests {cost.requests}, client errors {cost.client_errors}; new master serving "
          f"the slot after {cost.switch_s:.2f} s; longest pairs-stream stall "
          f"{cost.longest_stall_s:.2f} s" + (f"; killed node back as a replica after "
          f"{cost.restart_s:.2f} s" if kill else ""))  # fmt: skip
    print(f"  pairs missing {cost.pairs_missing} of {len(cost.served_ids)} served, duplicated "
          f"{cost.pairs_duplicated}; verdicts missing {cost.verdicts_missing}, duplicated "
          f"{cost.verdicts_duplicated}; pair writes re-sent and found written "
          f"{cost.pairlog_rewritten:.0f}, batches not acknowledged by replicas "
          f"{cost.pairlog_unreplicated:.0f}; judge Redis errors "
          f"{cost.judge_store_errors}")  # fmt: skip
    why = (" (kill -9: Redis replicates asynchronously; writes the master took in its last"
           " moments never reached the replica)")  # fmt: skip
    print(
        f"  {'nothing acknowledged was lost' if cost.lost_nothing else 'pairs were LOST'}"
        + (why if kill and not cost.lost_nothing else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_failover")
    parser.add_argument("--before", type=float, default=3.0)
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--kill", action="store_true", help="kill -9 the master instead")
    parser.add_argument("--wait", type=int, default=0, help="redis.wait_replicas (default 0)")
    parser.add_argument(
        "--compare", action="store_true",
        help="run with redis.wait_replicas 0, then 1, on the same cluster",
    )  # fmt: skip
    args = parser.parse_args()
    waits = [0, 1] if args.compare else [args.wait]
    cluster = LocalCluster(masters=3, replicas=1)
    cluster.start()
    lost = False
    try:
        for wait in waits:
            cluster.wait_ok()
            cluster.flushall()
            cost = failover(cluster, before=args.before, after=args.after, kill=args.kill,
                            wait=wait)  # fmt: skip
            _print(cost, args.kill, wait)
            lost = lost or not cost.lost_nothing
    finally:
        cluster.stop()
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
