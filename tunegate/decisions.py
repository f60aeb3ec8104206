"""The decisions stream, read and acted on: latest, newest N, approve or reject a waiting one.

The controller records decisions (analysis/controller.py); an operator approves or rejects the
one that waits (``needs_approval``) through the admin API or ``tunegate state --approve``. Both
land here, so the proxy (which may not import analysis) and the controller share one rule: the
approved change is written only if the state is still the one the decision was made from.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.experiments import ExperimentConfig
from tunegate.records import Decision, decode_decision, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention
from tunegate.state import read_state, write_state

__all__ = ["approve", "latest_decision", "read_decisions", "record_decision", "reject"]


async def record_decision(
    client: aioredis.Redis, decision: Decision, maxlen: int = Retention().decisions
) -> None:
    with store_errors("record decision"):
        await client.xadd(
            keys.decisions(decision.experiment),
            encode(decision),  # type: ignore[arg-type]  # redis-py's field type is invariant
            maxlen=maxlen,
            approximate=True,
        )


async def read_decisions(client: aioredis.Redis, experiment: str, count: int) -> list[Decision]:
    """The newest ``count`` decisions, newest first; RecordError if one does not decode."""
    with store_errors("read decisions"):
        entries = await client.xrevrange(keys.decisions(experiment), count=count)
    return [decode_decision(fields) for _, fields in entries or [] if fields]


async def latest_decision(client: aioredis.Redis, experiment: str) -> Decision | None:
    found = await read_decisions(client, experiment, 1)
    return found[0] if found else None


async def _waiting(client: aioredis.Redis, config: ExperimentConfig) -> Decision | None:
    latest = await latest_decision(client, config.name)
    if latest is None or not latest.needs_approval or latest.applied:
        return None
    return latest


async def approve(
    client: aioredis.Redis,
    config: ExperimentConfig,
    actor: str,
    *,
    retention: Retention | None = None,
) -> Decision | None:
    """Apply the decision that waits; None when none waits or the state moved since."""
    retention = retention or Retention()
    latest = await _waiting(client, config)
    if latest is None:
        return None
    state = await read_state(client, config.name)
    current = (state.stage, state.ab_weight) if state else (config.stage, config.ab_weight)
    if current != (latest.stage_before, latest.weight_before):
        return None
    written = await write_state(
        client,
        config.name,
        stage=latest.stage_after,
        ab_weight=latest.weight_after,
        mirror_rate=state.mirror_rate if state else config.mirror_rate,
        actor=actor,
        reason=f"approved {latest.action.value}: {latest.reason}",
        expected_version=state.version if state else None,
        audit_maxlen=retention.audit,
    )
    if written is None:
        return None
    approved = latest.model_copy(
        update={"applied": True, "needs_approval": False, "time": time.time()}
    )
    await record_decision(client, approved, retention.decisions)
    return approved


async def reject(
    client: aioredis.Redis,
    config: ExperimentConfig,
    actor: str,
    reason: str,
    *,
    retention: Retention | None = None,
) -> Decision | None:
    """Record that the waiting decision is refused (nothing changes); None when none waits."""
    latest = await _waiting(client, config)
    if latest is None:
        return None
    why = f"Rejected by {actor}: {reason}"
    rejected = latest.model_copy(
        update={
            "needs_approval": False,
            "time": time.time(),
            "reasons": [*latest.reasons, why],
            "reason": f"{latest.reason} {why}".strip(),
        }
    )
    await record_decision(client, rejected, (retention or Retention()).decisions)
    return rejected
