"""The admin API's experiment routes: list and read experiments, set a state (audited).

Reads take either token, writes the admin token (proxy/routes/auth.py). State changes go through
tunegate.state.write_state, so they are versioned (compare-and-set on ``expected_version``, 409
when stale) and audited exactly like the controller's. The other admin routes: operate.py (the
operator's actions), history.py (status, decisions, audit, offline results), verdict.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from proxy.errors import Conflict
from proxy.routes.auth import Reader, Writer
from proxy.routes.deps import json_response
from proxy.routes.lookup import experiment_config, experiment_view, live_state, store
from tunegate.records import Stage
from tunegate.state import write_state

__all__ = ["ACTOR", "Actor", "StateChange", "actor_name", "router"]

ACTOR = "admin-api"
#: who asked, as the audit log records it after "admin-api:" (an operator's login, a tool)
Actor = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]{1,64}$")

router = APIRouter(prefix="/admin", tags=["experiments"])


def actor_name(actor: str | None) -> str:
    return ACTOR if actor is None else f"{ACTOR}:{actor}"


class StateChange(BaseModel):
    """A requested change; unset weight and mirror rate keep their current values."""

    model_config = ConfigDict(extra="forbid")
    stage: Stage
    ab_weight: float | None = Field(default=None, ge=0, le=1)
    mirror_rate: float | None = Field(default=None, ge=0, le=1)
    reason: str = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(default=None, ge=0)
    actor: str | None = Actor


@router.get("/experiments")
async def list_experiments(rt: Reader) -> Response:
    views = [experiment_view(rt, cfg, await live_state(rt, cfg)) for cfg in rt.configs()]
    return json_response({"experiments": views})


@router.get("/experiments/{name}")
async def get_experiment(name: str, rt: Reader) -> Response:
    cfg = experiment_config(rt, name)
    return json_response(experiment_view(rt, cfg, await live_state(rt, cfg)))


@router.put("/experiments/{name}/state")
async def put_state(name: str, change: StateChange, rt: Writer) -> Response:
    cfg = experiment_config(rt, name)
    current = await live_state(rt, cfg)
    assert rt.redis is not None and rt.table is not None
    with store("state store"):
        new = await write_state(
            rt.redis,
            cfg.name,
            stage=change.stage,
            ab_weight=current.ab_weight if change.ab_weight is None else change.ab_weight,
            mirror_rate=current.mirror_rate if change.mirror_rate is None else change.mirror_rate,
            actor=actor_name(change.actor),
            reason=change.reason,
            expected_version=change.expected_version,
            audit_maxlen=rt.retention.audit,
        )
    if new is None:
        raise Conflict(
            f"state of '{name}' changed meanwhile (expected version {change.expected_version})",
            param="expected_version",
        )
    rt.table.set_state(cfg.name, new)
    return json_response(experiment_view(rt, cfg, new))
