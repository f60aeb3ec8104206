"""``redis.wait_replicas``: a pair batch counts as written only once a replica has it.

The drill opens the window asynchronous replication leaves, on purpose and every time: the
replica of the slot's master is paused (SIGSTOP) and its link to the master closed, pairs are
written, the master is killed (``kill -9``) and the replica, resumed, is elected in its place.
Without WAIT the master's acknowledgement was all the pair logger had, and every pair of the
window is gone; with WAIT none was acknowledged, they stayed buffered, and they reach the new
master. A cluster of its own (the drill kills a node), three masters with one replica each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bench.cluster import LocalCluster
from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from proxy.pairlog import PairLogger
from tests.cluster.conftest import started_cluster
from tunegate import keys
from tunegate.records import Arm, Endpoint, Pair, decode_pair
from tunegate.redis import RedisSettings, connect

EXP = "durable"
Entries = list[tuple[bytes, dict[bytes, bytes]]]


@pytest.fixture(scope="module")
def drill_cluster() -> Iterator[LocalCluster]:
    """A cluster of this module's own: the drills kill and pause its nodes."""
    yield from started_cluster()


def _pair(i: int) -> Pair:
    return Pair.model_construct(
        id=f"pair-{i:03d}", experiment=EXP, time=float(i), endpoint=Endpoint.CHAT,
        request="{}", served_arm=Arm.CONTROL, control=None, candidate=None,
        mirror_skipped="mirror_rate", user_key_hash=None, category=None, reference=None,
        labels={},
    )  # fmt: skip


async def _until(
    condition: Callable[[], bool],
    what: str,
    within_s: float = 20.0,
    cluster: LocalCluster | None = None,
) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            logs = f"\n{cluster.log_tails()}" if cluster is not None else ""
            raise AssertionError(f"timed out waiting for {what}{logs}")
        await asyncio.sleep(0.02)


def _serves(cluster: LocalCluster, key: str, port: int) -> Callable[[], bool]:
    """Whether the master on ``port`` holds ``key``'s slot now (False while nobody does)."""

    def check() -> bool:
        try:
            return cluster.master_of(key) == port
        except Exception:  # mid-election: a node refuses, the slot is uncovered
            return False

    return check


def _logger(client: aioredis.Redis, metrics: ProxyMetrics, wait: int) -> PairLogger:
    return PairLogger(
        client, PairLogSettings(batch_size=10, flush_interval_ms=5), metrics,
        maxlen=10_000, shutdown_grace_s=10, wait_replicas=wait, wait_timeout_ms=100,
    )  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wait", [0, 1], ids=["wait-off", "wait-on"])
async def test_a_master_killed_before_its_replica_had_the_pairs(
    drill_cluster: LocalCluster, wait: int
) -> None:
    cluster, stream, n = drill_cluster, keys.pairs(EXP), 20
    cluster.wait_ok()
    cluster.flushall()
    master = cluster.master_of(stream)
    replica = cluster.replica_of(master)
    metrics = ProxyMetrics(CollectorRegistry())

    def counted(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    def logged() -> float:
        return counted("tunegate_pairs_logged_total", experiment=EXP)

    def unreplicated() -> float:
        return counted("tunegate_pair_batches_unreplicated_total", reason="replicas")

    settings = RedisSettings.model_validate(
        {"url": cluster.url, "cluster": True, "socket_timeout_seconds": 1.0}
    )
    async with connect(settings) as client, _logger(client, metrics, wait) as logger:
        await client.xlen(stream)  # the client knows the cluster before any node pauses
        cluster.pause(replica)
        try:
            cluster.drop_replicas(master)  # nothing written from now on reaches the replica
            for i in range(n):
                logger.submit(_pair(i))
            if wait:  # on the master, not acknowledged by its replica: kept
                await _until(lambda: unreplicated() >= 1, "a WAIT finding no replica")
                assert logged() == 0 and logger.depth == n
            else:  # the master's reply was the acknowledgement
                await _until(lambda: logged() == n, f"{n} pairs logged")
            assert await client.xlen(stream) == n  # the master has them either way
            cluster.kill(master)
        finally:
            cluster.resume(replica)
        await _until(_serves(cluster, stream, replica), "the replica's election", 60.0, cluster)
        cluster.restart(master)  # back as a replica of the new master: WAIT can succeed again
        await _until(lambda: logged() == n and logger.depth == 0, f"{n} pairs logged")
        entries = cast(Entries, await client.xrange(stream))
    ids = [decode_pair(fields).id for _, fields in entries]
    if wait:
        assert sorted(ids) == [f"pair-{i:03d}" for i in range(n)]  # every pair, each once
        assert counted("tunegate_pairs_rewritten_total", experiment=EXP) == 0  # went to R
    else:
        assert ids == []  # acknowledged and lost: the window WAIT closes


async def test_a_batch_waits_in_the_buffer_while_the_replica_is_unreachable(
    drill_cluster: LocalCluster,
) -> None:
    cluster, stream, n = drill_cluster, keys.pairs(EXP), 12
    cluster.wait_ok()
    cluster.flushall()
    replica = cluster.replica_of(cluster.master_of(stream))
    metrics = ProxyMetrics(CollectorRegistry())

    def counted(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    settings = RedisSettings.model_validate({"url": cluster.url, "cluster": True})
    async with connect(settings) as client, _logger(client, metrics, 1) as logger:
        await client.xlen(stream)  # the client knows the cluster before any node pauses
        cluster.pause(replica)
        try:
            for i in range(n):
                logger.submit(_pair(i))
            await _until(
                lambda: counted("tunegate_pair_batches_unreplicated_total", reason="replicas") >= 1,
                "a WAIT that timed out",
            )
            assert logger.depth == n
            assert counted("tunegate_pairs_logged_total", experiment=EXP) == 0
        finally:
            cluster.resume(replica)
        await _until(
            lambda: counted("tunegate_pairs_logged_total", experiment=EXP) == n, "pairs logged"
        )
        assert logger.depth == 0
        entries = cast(Entries, await client.xrange(stream))
    ids = [decode_pair(fields).id for _, fields in entries]
    assert sorted(ids) == [f"pair-{i:03d}" for i in range(n)]  # the re-sends added nothing
    assert counted("tunegate_pairs_rewritten_total", experiment=EXP) == n  # all found written
