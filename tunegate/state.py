"""Read and change an experiment's live state in Redis; each change bumps the version, is audited.

The proxy's admin API, the rollout controller and the `tunegate state` command all change state
through :func:`write_state`, so the audit stream is complete whoever made the change.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.records import AuditEntry, ExperimentState, Stage, decode_audit, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention

__all__ = ["read_audit", "read_state", "write_state"]

# Compare-and-set on the version: the write lands only if nobody changed the state meanwhile.
_CAS = """
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'v', ARGV[2], 'json', ARGV[3])
return 1
"""


async def read_state(client: aioredis.Redis, experiment: str) -> ExperimentState | None:
    """The state hash, or None when Redis holds no state for the experiment yet."""
    with store_errors("read experiment state"):
        fields = await client.hgetall(keys.state(experiment))
    return ExperimentState.from_hash(fields) if fields else None


async def write_state(
    client: aioredis.Redis,
    experiment: str,
    *,
    stage: Stage,
    ab_weight: float,
    mirror_rate: float,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    audit_maxlen: int = Retention().audit,
) -> ExperimentState | None:
    """Write a new state (version + 1) with an audit entry; None if ``expected_version`` is stale.

    With ``expected_version=None`` the write is based on whatever version is current.
    """
    with store_errors("write experiment state"):
        for _ in range(5):
            current = await read_state(client, experiment)
            base = current.version if current is not None else 0
            if expected_version is not None and expected_version != base:
                return None
            new = ExperimentState(
                stage=stage,
                ab_weight=ab_weight,
                mirror_rate=mirror_rate,
                version=base + 1,
                updated_by=actor,
                updated_at=time.time(),
            )
            audit = encode(
                AuditEntry(
                    experiment=experiment,
                    time=new.updated_at,
                    actor=actor,
                    reason=reason,
                    before=current,
                    after=new,
                )
            )
            flat = [x for kv in new.to_hash().items() for x in kv]
            args: list[str | bytes] = [str(base), audit["v"], audit["json"], str(audit_maxlen)]
            args += flat
            state_key, audit_key = keys.state(experiment), keys.audit(experiment)
            done = await client.eval(_CAS, 2, state_key, audit_key, *args)
            if done:
                # outside the script: EXPERIMENTS has no hash tag, so it may sit on another slot
                await client.sadd(keys.EXPERIMENTS, experiment)
                return new
            if expected_version is not None:
                return None
        return None


async def read_audit(client: aioredis.Redis, experiment: str, count: int = 100) -> list[AuditEntry]:
    """The newest ``count`` audit entries, oldest first; RecordError if an entry does not decode."""
    with store_errors("read audit"):
        entries = await client.xrevrange(keys.audit(experiment), count=count)
    return [decode_audit(fields) for _, fields in reversed(entries or []) if fields]
