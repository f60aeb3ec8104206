"""Experiment state changes are versioned, compare-and-set, and audited."""

from __future__ import annotations

import redis.asyncio as aioredis

from tunegate.records import Stage
from tunegate.state import read_audit, read_state, write_state


async def test_state_versions_and_audit(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    assert await read_state(client, "e") is None
    first = await write_state(
        client, "e", stage=Stage.AB, ab_weight=0.05, mirror_rate=1.0, actor="op", reason="go"
    )
    assert first is not None and first.version == 1
    stale = await write_state(
        client,
        "e",
        stage=Stage.PROMOTED,
        ab_weight=1,
        mirror_rate=1,
        actor="c",
        reason="x",
        expected_version=0,
    )
    assert stale is None
    second = await write_state(
        client,
        "e",
        stage=Stage.PROMOTED,
        ab_weight=1,
        mirror_rate=1,
        actor="c",
        reason="win",
        expected_version=1,
    )
    assert second is not None and second.version == 2
    state = await read_state(client, "e")
    assert state is not None and state.stage is Stage.PROMOTED and state.updated_by == "c"
    audit = await read_audit(client, "e")
    assert [a.reason for a in audit] == ["go", "win"]
    assert audit[1].before is not None and audit[1].before.stage is Stage.AB
    assert audit[1].after.version == 2 and audit[1].experiment == "e"
    assert all(a.schema_version == 1 for a in audit)
    assert await client.smembers("tg:experiments") == {b"e"}
    await client.aclose()
