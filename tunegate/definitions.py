"""Experiment definitions as live objects in Redis: seeded from the config, versioned, announced.

Each definition is a hash on the experiment's own slot (``keys.definition``: the ExperimentConfig
as JSON and a version that grows by one on every change); the set ``keys.DEFINITIONS`` lists the
names. Writes are compare-and-set on the version in one Lua script on that slot; the set is
written after it, separately (it has no hash tag, so in a Redis Cluster it sits elsewhere), and
readers skip a name whose hash is gone. Every change is published on ``keys.STATE_CHANNEL`` so
the proxies apply it at once (they also poll, for a lost message). The config file seeds them
"last-applied" (:func:`seed_definitions`): a definition is written when the file's differs from
the one it last seeded, never merely because a replica started.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

import redis.asyncio as aioredis
from pydantic import ValidationError

from tunegate import keys
from tunegate.errors import RecordError
from tunegate.experiments import ExperimentConfig
from tunegate.records import AuditEntry, ExperimentState, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention
from tunegate.state import read_state

__all__ = [
    "Definition",
    "current_definitions",
    "delete_definition",
    "read_definitions",
    "seed_definitions",
    "write_definition",
]

Definition = tuple[ExperimentConfig, int]  # the config and its version

# ARGV: expected version (0: must not exist), json. Returns the new version, or -(current).
_WRITE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return -current - 1 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'json', ARGV[2])
return current + 1
"""

# KEYS: seeded digest, definition. Returns the digest last seeded (or nil) and the version.
_PEEK = """
return {redis.call('GET', KEYS[1]), tonumber(redis.call('HGET', KEYS[2], 'version') or '0')}
"""

# KEYS: seeded digest, definition, audit. ARGV: digest, expected version, json, audit v, audit
# json, audit maxlen. 0: that digest is already seeded; -1: the version moved; else the new one.
_SEED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
local current = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
if current ~= tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], 'json') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[2], 'version', current + 1, 'json', ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'v', ARGV[4], 'json', ARGV[5])
return current + 1
"""

# KEYS: definition, state. ARGV: expected version. 1 deleted, else -(current) - 1.
_DELETE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current == 0 or current ~= tonumber(ARGV[1]) then return -current - 1 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


def _decode(name: str, fields: dict[bytes, bytes]) -> Definition:
    try:
        config = ExperimentConfig.model_validate_json(fields[b"json"])
        return config, int(fields[b"version"])
    except (KeyError, ValueError, ValidationError) as exc:
        raise RecordError(f"definition of {name!r} does not decode: {exc}") from None


async def read_definitions(client: aioredis.Redis) -> dict[str, Definition]:
    """Every definition in Redis by name; RecordError names one that does not decode."""
    with store_errors("read definitions"):
        members = await client.smembers(keys.DEFINITIONS)
        names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in members)
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.definition(name))
        found = await pipe.execute()
    return {
        name: _decode(name, fields) for name, fields in zip(names, found, strict=True) if fields
    }


async def write_definition(
    client: aioredis.Redis, config: ExperimentConfig, expected_version: int
) -> int | None:
    """Store ``config`` if its version is ``expected_version`` (0: create); the new version.

    None when the version differs (someone else changed it, or it exists on a create).
    """
    with store_errors("write definition"):
        got = int(
            await client.eval(
                _WRITE,
                1,
                keys.definition(config.name),
                str(expected_version),
                config.model_dump_json(),
            )
        )
        if got < 0:
            return None
        await client.sadd(keys.DEFINITIONS, config.name)
        await client.publish(keys.STATE_CHANNEL, config.name)
    return got


async def delete_definition(client: aioredis.Redis, name: str, expected_version: int) -> bool:
    """Delete the definition and its state hash at ``expected_version``; False when it differs.

    The state goes with it (same slot, same script), so an experiment created again under the
    name starts from its new definition's stage, not the old one's. The experiment's streams
    (pairs, verdicts, decisions, audit) stay: they are its history; so do the incremental
    evidence cache, which mirrors those streams, and the fence: it is the highest lease token
    that touched the name, and deleting it would let a controller whose lease has already
    passed on write the state of an experiment recreated under the same name.
    """
    with store_errors("delete definition"):
        got = int(
            await client.eval(
                _DELETE, 2, keys.definition(name), keys.state(name), str(expected_version)
            )
        )
        if got != 1:
            return False
        await client.srem(keys.DEFINITIONS, name)
        await client.publish(keys.STATE_CHANNEL, name)
    return True


async def _seed_one(client: aioredis.Redis, config: ExperimentConfig, audit_maxlen: int) -> bool:
    body = config.model_dump_json()
    digest = hashlib.sha256(body.encode()).hexdigest()
    for _ in range(5):  # a concurrent edit moved the version: read it again
        with store_errors("seed definitions"):
            last, version = await client.eval(
                _PEEK, 2, keys.seeded_from(config.name), keys.definition(config.name)
            )
            seen = last.decode() if isinstance(last, bytes) else last
            if seen == digest:
                return False  # this file's definition is applied; keep run-time changes
            state = await read_state(client, config.name)
            now = time.time()
            after = state or ExperimentState(
                stage=config.stage,
                ab_weight=config.ab_weight,
                mirror_rate=config.mirror_rate,
                version=0,
                updated_at=now,
            )
            audit = encode(
                AuditEntry(
                    experiment=config.name,
                    time=now,
                    actor="config",
                    reason="the config file's definition changed; seeded from it",
                    before=state,
                    after=after,
                    definition_version=int(version) + 1,
                )
            )
            got = int(
                await client.eval(
                    _SEED,
                    3,
                    keys.seeded_from(config.name),
                    keys.definition(config.name),
                    keys.audit(config.name),
                    digest,
                    str(version),
                    body,
                    audit["v"],
                    audit["json"],
                    str(audit_maxlen),
                )
            )
            if got == 0:
                return False  # another replica seeded the same definition meanwhile
            if got < 0:
                continue
            await client.sadd(keys.DEFINITIONS, config.name)
            await client.publish(keys.STATE_CHANNEL, config.name)
            return True
    return False


async def seed_definitions(
    client: aioredis.Redis,
    configs: Iterable[ExperimentConfig],
    *,
    audit_maxlen: int = Retention().audit,
) -> int:
    """Apply the config file's definitions that differ from the ones last seeded; how many.

    "Last-applied" seeding: the store keeps, per experiment, a digest of the file's definition
    it was last seeded from (``keys.seeded_from``). A definition whose digest differs is
    written as a versioned update (compare-and-set, audited with actor ``config``, published);
    one whose digest matches changes nothing, so edits made at run time survive a restart, and
    a name deleted at run time stays deleted until its definition in the file changes. Replicas
    starting together with one file write it once: the digest and the version are checked in
    the same script.
    """
    written = 0
    for config in configs:
        written += await _seed_one(client, config, audit_maxlen)
        with store_errors("seed definitions"):
            await client.sadd(keys.SEEDED, config.name)
    return written


async def current_definitions(
    client: aioredis.Redis, seed: Iterable[ExperimentConfig]
) -> list[ExperimentConfig]:
    """The live definitions, by name, as the proxies serve them (proxy/experiments.py).

    A Redis that never saw a seed (new, or wiped) gets ``seed`` first, as a proxy would give it.
    RecordError names a definition that does not decode.
    """
    with store_errors("read definitions"):
        seeded = await client.exists(keys.SEEDED)
    if not seeded:
        await seed_definitions(client, seed)
    return [config for config, _ in (await read_definitions(client)).values()]
