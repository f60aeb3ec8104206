"""Controller HA: one lease holder, fencing, failover after a kill -9, no decision applied twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
import yaml

from bench.children import stop_all
from tests.analysis.test_controller import _seed, _settings
from tunegate import keys
from tunegate.errors import StaleLeader
from tunegate.lease import Leadership
from tunegate.records import Stage, decode_decision
from tunegate.state import raise_fence, read_audit, write_state

ROOT = Path(__file__).resolve().parents[2]


async def test_one_holder_then_the_other_with_a_higher_token(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        first, second = Leadership(client, "t", 5, "a"), Leadership(client, "t", 5, "b")
        assert await first.attempt() == 1
        assert await second.attempt() is None
        assert await first.attempt() == 1  # renewed, same token
        await first.aclose()  # releases
        assert await second.attempt() == 2
        assert await first.attempt() is None
        await client.delete(keys.lease("t"))  # b's lease expired (as after a kill)
        assert await second.attempt() is None  # its renewal notices at once
    finally:
        await client.aclose()


async def test_a_stale_token_cannot_write_after_a_newer_leader_fenced(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:

        async def write(reason: str, fence: int) -> object:
            return await write_state(
                client, "e", stage=Stage.AB, ab_weight=0.1, mirror_rate=1.0,
                actor="controller", reason=reason, fence=fence,
            )  # fmt: skip

        assert await write("old leader", 1) is not None
        assert await raise_fence(client, "e", 2)
        with pytest.raises(StaleLeader):
            await write("late", 1)
        assert not await raise_fence(client, "e", 1)
        assert await write("new leader", 2) is not None
        assert [a.reason for a in await read_audit(client, "e")] == ["old leader", "new leader"]
    finally:
        await client.aclose()


def _decider(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "decide", "--all", "--loop", "--apply", "--json",
             "--interval", "0.2", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def _holder(client: redis.Redis) -> tuple[int, int] | None:
    """(pid, token) of the lease holder, or None."""
    raw = client.get(keys.lease("decide"))
    if raw is None:
        return None
    holder, _, token = raw.decode().rpartition(":")  # type: ignore[union-attr]  # bytes reply
    return int(holder.split("/")[1]), int(token)


def _wait(predicate: object, timeout: float) -> float:
    start = time.monotonic()
    assert callable(predicate)
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - start


def test_two_controllers_one_leader_failover_after_kill_and_no_double_apply(
    redis_url: str, tmp_path: Path
) -> None:
    lease_s = 1.5
    data = _settings(redis_url).model_dump(mode="json")
    data["redis"]["url"] = redis_url
    data["analysis"] = {"lease_seconds": lease_s}
    config = tmp_path / "tunegate.yaml"
    config.write_text(yaml.safe_dump(data))

    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await _seed(client)
        await client.aclose()

    asyncio.run(seed())
    client = redis.Redis.from_url(redis_url)
    children = [_decider(config, tmp_path / f"decide-{i}.log") for i in range(2)]
    try:
        _wait(lambda: _holder(client) is not None and client.xlen(keys.decisions("exp")) > 0, 30)
        held = _holder(client)
        assert held is not None and held[1] == 1
        leader = next(c for c in children if c.pid == held[0])
        follower = next(c for c in children if c is not leader)
        time.sleep(lease_s)  # the follower keeps following while the leader renews
        assert _holder(client) == held
        decided_by = {decode_decision(f).fence for _, f in client.xrange(keys.decisions("exp"))}  # type: ignore[arg-type, union-attr]  # redis-py's loose reply type
        assert decided_by == {1}
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(5)
        took = _wait(lambda: (_holder(client) or (0, 0))[0] == follower.pid, lease_s + 2)
        assert took < lease_s + 1, took  # the lease expires, then the follower's next try wins
        assert _holder(client) == (follower.pid, 2)
        count = client.xlen(keys.decisions("exp"))
        _wait(lambda: client.xlen(keys.decisions("exp")) > count, 10)
    finally:
        stop_all(children, grace_s=10)
    entries = [decode_decision(f) for _, f in client.xrange(keys.decisions("exp"))]  # type: ignore[arg-type, union-attr]  # redis-py's loose reply type
    assert {d.fence for d in entries} == {1, 2}
    applied = [d for d in entries if d.applied]
    assert applied, "the leader applied the start of the A/B test"

    async def audit() -> list[int]:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            entries = await read_audit(aclient, "exp")
            # state changes only: seeding the file's definition is audited too, as version 0
            return [a.after.version for a in entries if a.definition_version is None]
        finally:
            await aclient.aclose()

    versions = asyncio.run(audit())
    assert versions == list(range(1, len(versions) + 1))  # each version written once
    assert len(versions) == len(applied)  # no decision applied twice (or lost)
    client.close()
