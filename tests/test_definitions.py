"""Last-applied seeding: the config file's definition is written when it changed, once."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tunegate.definitions import (
    delete_definition,
    read_definitions,
    seed_definitions,
    write_definition,
)
from tunegate.experiments import ExperimentConfig
from tunegate.records import Stage
from tunegate.state import read_audit


def _config(name: str, **fields: object) -> ExperimentConfig:
    body: dict[str, object] = {
        "name": name,
        "control": {"upstream": "control"},
        "candidate": {"upstream": "candidate", "model": "cand-model"},
    }
    body.update(fields)
    return ExperimentConfig.model_validate(body)


async def _version(client: aioredis.Redis, name: str) -> int | None:
    found = await read_definitions(client)
    return found[name][1] if name in found else None


async def test_a_changed_file_is_written_once_as_an_audited_update(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    assert await seed_definitions(client, [_config("e")]) == 1
    assert await seed_definitions(client, [_config("e")]) == 0  # a restart, same file
    assert await _version(client, "e") == 1

    changed = _config("e", ab_weight=0.25)
    # ten replicas start together with the changed file: one of them writes it
    got = await asyncio.gather(*(seed_definitions(client, [changed]) for _ in range(10)))
    assert sum(got) == 1
    found = await read_definitions(client)
    assert found["e"] == (changed, 2)
    audit = await read_audit(client, "e")
    assert [(a.actor, a.definition_version) for a in audit] == [("config", 1), ("config", 2)]
    await client.aclose()


async def test_run_time_edits_and_deletions_survive_a_restart_with_the_same_file(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await seed_definitions(client, [_config("kept"), _config("dropped")])
    edited = _config("kept", stage=Stage.PROMOTED)
    assert await write_definition(client, edited, 1) == 2
    assert await delete_definition(client, "dropped", 1)

    await seed_definitions(client, [_config("kept"), _config("dropped")])
    found = await read_definitions(client)
    assert set(found) == {"kept"} and found["kept"] == (edited, 2)

    # the file changes: its new definitions win, and the deleted name comes back
    await seed_definitions(
        client, [_config("kept", mirror_rate=0.5), _config("dropped", ab_weight=0.1)]
    )
    found = await read_definitions(client)
    assert found["kept"] == (_config("kept", mirror_rate=0.5), 3)
    assert found["dropped"] == (_config("dropped", ab_weight=0.1), 1)
    await client.aclose()


async def test_a_definition_equal_to_the_file_is_adopted_without_a_new_version(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    assert await write_definition(client, _config("e"), 0) == 1  # created by the admin API
    assert await seed_definitions(client, [_config("e")]) == 0
    assert await _version(client, "e") == 1
    await client.aclose()
