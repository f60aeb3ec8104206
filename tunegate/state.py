"""Read and change an experiment's live state in Redis; each change bumps the version, is audited.

The proxy's admin API, the rollout controller and the `tunegate state` command all change state
through :func:`write_state`, so the audit stream is complete whoever made the change.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.errors import StaleLeader
from tunegate.records import AuditEntry, ExperimentState, Stage, decode_audit, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention

__all__ = ["raise_fence", "read_audit", "read_state", "write_state"]

# Compare-and-set on the version: the write lands only if nobody changed the state meanwhile,
# and (with a lease token in ARGV[5]) only if no newer leader has touched the experiment: -1.
_CAS = """
if ARGV[5] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen and tonumber(seen) > tonumber(ARGV[5]) then return -1 end
  redis.call('SET', KEYS[3], ARGV[5])
end
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'v', ARGV[2], 'json', ARGV[3])
return 1
"""

# Raise the experiment's fence to a lease token; 0 when a newer token was already there.
_FENCE = """
local seen = redis.call('GET', KEYS[1])
if seen and tonumber(seen) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
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
    fence: int | None = None,
) -> ExperimentState | None:
    """Write a new state (version + 1) with an audit entry; None if ``expected_version`` is stale.

    With ``expected_version=None`` the write is based on whatever version is current. A
    controller passes its lease token as ``fence``: StaleLeader when a newer one has been seen.
    Every write that lands is announced on ``keys.STATE_CHANNEL`` (the proxies apply it).
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
            args += ["" if fence is None else str(fence), *flat]
            state_key, audit_key = keys.state(experiment), keys.audit(experiment)
            done = await client.eval(_CAS, 3, state_key, audit_key, keys.fence(experiment), *args)
            if done == -1:
                raise StaleLeader(f"{experiment}: lease token {fence} was taken over; not written")
            if done:
                # outside the script: EXPERIMENTS has no hash tag, so it may sit on another slot
                await client.sadd(keys.EXPERIMENTS, experiment)
                await client.publish(keys.STATE_CHANNEL, experiment)
                return new
            if expected_version is not None:
                return None
        return None


async def raise_fence(client: aioredis.Redis, experiment: str, token: int) -> bool:
    """Mark the experiment as led by lease ``token``; False when a newer leader already has it.

    A new leader calls this before its first decision, so an old one's later writes fail.
    """
    with store_errors("raise fence"):
        raised = await client.eval(_FENCE, 1, keys.fence(experiment), str(token))
    return bool(raised)


async def read_audit(client: aioredis.Redis, experiment: str, count: int = 100) -> list[AuditEntry]:
    """The newest ``count`` audit entries, oldest first; RecordError if an entry does not decode."""
    with store_errors("read audit"):
        entries = await client.xrevrange(keys.audit(experiment), count=count)
    return [decode_audit(fields) for _, fields in reversed(entries or []) if fields]
