"""``redis.wait_replicas`` on a single Redis: no replica, no acknowledgement; a replica, logged.

The cluster drill (kill -9 of a master whose replica lagged) is tests/cluster/test_cluster_wait.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from cli.server import free_port
from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from proxy.pairlog import PairLogger
from tunegate import keys
from tunegate.records import Arm, Endpoint, Pair, decode_pair
from tunegate.redis import EmbeddedRedis, RedisSettings

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def _pair(i: int) -> Pair:
    return Pair.model_construct(
        id=f"pair-{i:03d}", experiment="exp", time=float(i), endpoint=Endpoint.CHAT,
        request="{}", served_arm=Arm.CONTROL, control=None, candidate=None,
        mirror_skipped="mirror_rate", user_key_hash=None, category=None, reference=None,
        labels={},
    )  # fmt: skip


async def _until(condition: Callable[[], bool], what: str, within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_no_pair_counts_as_written_until_a_replica_has_it(
    redis_server: Any, redis_url: str, tmp_path: Path
) -> None:
    metrics = ProxyMetrics(CollectorRegistry())
    metrics.touch(["exp"])

    def counted(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    client = aioredis.Redis.from_url(redis_url, socket_timeout=1.0)
    replica = EmbeddedRedis(tmp_path / "replica", port=free_port())
    settings = PairLogSettings(batch_size=5, flush_interval_ms=5)
    try:
        async with PairLogger(
            client, settings, metrics, maxlen=1000, wait_replicas=1, wait_timeout_ms=50
        ) as logger:
            for i in range(8):
                logger.submit(_pair(i))
            await _until(
                lambda: counted("tunegate_pair_batches_unreplicated_total", reason="replicas") >= 2,
                "WAIT finding no replica, twice",
            )
            assert logger.depth == 8  # Redis has them (one backlog batch); none is acknowledged
            assert counted("tunegate_pairs_logged_total", experiment="exp") == 0
            assert await client.xlen(keys.pairs("exp")) == 8

            replica.start()
            host, port = "127.0.0.1", redis_server.port
            follower = aioredis.Redis(port=replica.port)
            await follower.replicaof(host, port)
            await _until(
                lambda: counted("tunegate_pairs_logged_total", experiment="exp") == 8,
                "8 pairs logged once the replica follows",
            )
            assert logger.depth == 0
            assert await follower.xlen(keys.pairs("exp")) == 8  # and the replica has them
            await follower.aclose()
        entries = cast(Entries, await client.xrange(keys.pairs("exp")))
    finally:
        replica.stop()
        await client.aclose()
    ids = [decode_pair(fields).id for _, fields in entries]
    assert sorted(ids) == [f"pair-{i:03d}" for i in range(8)]  # re-sent, never added twice
    assert counted("tunegate_pairs_rewritten_total", experiment="exp") == 8
    assert counted("tunegate_pairs_dropped_total", experiment="exp", reason="rejected") == 0


def test_wait_must_end_before_the_socket_times_out() -> None:
    with pytest.raises(ValidationError, match="wait_timeout_ms must be below"):
        RedisSettings(wait_replicas=1, wait_timeout_ms=2000, socket_timeout_seconds=2.0)
    assert RedisSettings(wait_replicas=1, wait_timeout_ms=500).wait_timeout_ms == 500
