"""The operator's actions on one experiment: approve or reject the waiting decision, pause,
resume, promote, roll back; each with a reason, written and audited as the admin API's change.

- ``approve`` applies the latest decision that waits for approval (a policy without
  ``auto_apply``, or a controller run with ``--observe-only``), only if the state is still the
  one it was made from (409 otherwise, or when nothing waits); ``reject`` records it refused.
- ``pause`` stops the candidate's traffic and keeps the weight; ``resume`` returns to the stage
  and weight before the latest pause (from the audit log); 409 when not paused.
- ``promote`` sends all traffic to the candidate; ``rollback`` sends all to the control.
Every change but approve/reject takes an optional ``expected_version`` (409 when stale).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from proxy.errors import Conflict
from proxy.routes.admin import Actor, actor_name
from proxy.routes.auth import Writer
from proxy.routes.deps import json_response
from proxy.routes.lookup import experiment_config, experiment_view, live_state, store
from proxy.runtime import Runtime
from tunegate.decisions import approve, reject
from tunegate.experiments import ExperimentConfig
from tunegate.records import ExperimentState, Stage
from tunegate.state import read_audit, write_state

__all__ = ["Approval", "ManualChange", "Rejection", "router"]

router = APIRouter(prefix="/admin", tags=["operate"])

_AUDIT_LOOKBACK = 1000  # entries searched for the pause that resume undoes


class ManualChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(default=None, ge=0)
    actor: str | None = Actor


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str | None = Actor


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)
    actor: str | None = Actor


async def _write(
    rt: Runtime,
    cfg: ExperimentConfig,
    current: ExperimentState,
    stage: Stage,
    weight: float,
    change: ManualChange,
) -> Response:
    assert rt.redis is not None and rt.table is not None
    if change.expected_version is not None and change.expected_version != current.version:
        raise Conflict(
            f"state of '{cfg.name}' is version {current.version}, not {change.expected_version}",
            param="expected_version",
        )
    with store("state store"):
        new = await write_state(
            rt.redis,
            cfg.name,
            stage=stage,
            ab_weight=weight,
            mirror_rate=current.mirror_rate,
            actor=actor_name(change.actor),
            reason=change.reason,
            expected_version=current.version,
            audit_maxlen=rt.retention.audit,
        )
    if new is None:
        raise Conflict(f"state of '{cfg.name}' changed meanwhile", param="expected_version")
    rt.table.set_state(cfg.name, new)
    return json_response(experiment_view(rt, cfg, new))


@router.post("/experiments/{name}/pause")
async def pause(name: str, change: ManualChange, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    current = await live_state(rt, cfg)
    if current.stage is Stage.PAUSED:
        raise Conflict(f"'{name}' is already paused")
    return await _write(rt, cfg, current, Stage.PAUSED, current.ab_weight, change)


@router.post("/experiments/{name}/resume")
async def resume(name: str, change: ManualChange, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    current = await live_state(rt, cfg)
    if current.stage is not Stage.PAUSED:
        raise Conflict(f"'{name}' is not paused (stage {current.stage.value})")
    assert rt.redis is not None
    with store("audit log"):
        entries = await read_audit(rt.redis, cfg.name, _AUDIT_LOOKBACK)
    paused = next((e for e in reversed(entries) if e.after.stage is Stage.PAUSED), None)
    before = paused.before if paused is not None else None
    if before is None or before.stage is Stage.PAUSED:  # paused from the start: the config's
        stage, weight = (
            (cfg.stage, cfg.ab_weight) if cfg.stage is not Stage.PAUSED else (Stage.SHADOW, 0.0)
        )
    else:
        stage, weight = before.stage, before.ab_weight
    return await _write(rt, cfg, current, stage, weight, change)


@router.post("/experiments/{name}/promote")
async def promote(name: str, change: ManualChange, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    return await _write(rt, cfg, await live_state(rt, cfg), Stage.PROMOTED, 1.0, change)


@router.post("/experiments/{name}/rollback")
async def rollback(name: str, change: ManualChange, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    return await _write(rt, cfg, await live_state(rt, cfg), Stage.ROLLED_BACK, 0.0, change)


@router.post("/experiments/{name}/approve")
async def approve_decision(name: str, body: Approval, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    assert rt.redis is not None and rt.table is not None
    with store("decision store"):
        approved = await approve(rt.redis, cfg, actor_name(body.actor), retention=rt.retention)
    if approved is None:
        raise Conflict(f"no decision of '{name}' waits for approval (or the state moved since)")
    rt.table.set_state(cfg.name, await live_state(rt, cfg))
    return json_response(approved.model_dump(mode="json"))


@router.post("/experiments/{name}/reject")
async def reject_decision(name: str, body: Rejection, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    assert rt.redis is not None
    with store("decision store"):
        rejected = await reject(
            rt.redis, cfg, actor_name(body.actor), body.reason, retention=rt.retention
        )
    if rejected is None:
        raise Conflict(f"no decision of '{name}' waits for approval")
    return json_response(rejected.model_dump(mode="json"))
