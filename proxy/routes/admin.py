"""The admin API: read experiments' config and live state, change state (audited) with a token.

Every route needs ``Authorization: Bearer <proxy.admin_token>``; without a configured token the
admin API is disabled (503). State changes go through tunegate.state.write_state, so they are
versioned and audited exactly like the controller's.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from proxy.errors import Conflict, Unauthorized, Unavailable, UnknownModel
from proxy.experiments import config_state
from proxy.routes.deps import json_response, runtime
from proxy.runtime import Runtime
from tunegate.errors import StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.records import ExperimentState, Stage
from tunegate.state import read_state, write_state

__all__ = ["StateChange", "router"]

ACTOR = "admin-api"


def authorized(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Runtime:
    """The runtime, once the bearer token matches; 503 when no token is configured."""
    token = rt.config.admin_token
    if token is None:
        raise Unavailable("the admin API is disabled: no admin token is configured")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    # the scheme is case-insensitive (RFC 9110 11.1); the token is compared in constant time
    valid = hmac.compare_digest(given.strip(" ").encode("latin-1"), expected)
    if scheme.lower() != "bearer" or not valid:
        raise Unauthorized("a valid admin bearer token is required")
    return rt


router = APIRouter(prefix="/admin")
Admin = Annotated[Runtime, Depends(authorized)]


class StateChange(BaseModel):
    """A requested change; unset weight and mirror rate keep their current values."""

    model_config = ConfigDict(extra="forbid")
    stage: Stage
    ab_weight: float | None = Field(default=None, ge=0, le=1)
    mirror_rate: float | None = Field(default=None, ge=0, le=1)
    reason: str = Field(min_length=1, max_length=500)
    expected_version: int | None = Field(default=None, ge=0)


def _experiment(rt: Runtime, name: str) -> ExperimentConfig:
    cfg = rt.experiment(name)
    if cfg is None:
        raise UnknownModel(f"no experiment named '{name}'")
    return cfg


async def _live(rt: Runtime, cfg: ExperimentConfig) -> ExperimentState:
    assert rt.redis is not None
    try:
        state = await read_state(rt.redis, cfg.name)
    except StoreUnavailable as exc:
        raise Unavailable("state store unavailable") from exc
    return state if state is not None else config_state(cfg)


def _view(cfg: ExperimentConfig, state: ExperimentState) -> dict[str, object]:
    return {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "state": state.model_dump(mode="json"),
    }


@router.get("/experiments")
async def list_experiments(rt: Admin) -> Response:
    views = [_view(cfg, await _live(rt, cfg)) for cfg in rt.experiments]
    return json_response({"experiments": views})


@router.get("/experiments/{name}")
async def get_experiment(name: str, rt: Admin) -> Response:
    cfg = _experiment(rt, name)
    return json_response(_view(cfg, await _live(rt, cfg)))


@router.put("/experiments/{name}/state")
async def put_state(name: str, change: StateChange, rt: Admin) -> Response:
    cfg = _experiment(rt, name)
    current = await _live(rt, cfg)
    assert rt.redis is not None and rt.table is not None
    try:
        new = await write_state(
            rt.redis,
            cfg.name,
            stage=change.stage,
            ab_weight=current.ab_weight if change.ab_weight is None else change.ab_weight,
            mirror_rate=current.mirror_rate if change.mirror_rate is None else change.mirror_rate,
            actor=ACTOR,
            reason=change.reason,
            expected_version=change.expected_version,
            audit_maxlen=rt.retention.audit,
        )
    except StoreUnavailable as exc:
        raise Unavailable("state store unavailable") from exc
    if new is None:
        raise Conflict(
            f"state of '{name}' changed meanwhile (expected version {change.expected_version})",
            param="expected_version",
        )
    rt.table.set_state(cfg.name, new)
    return json_response(_view(cfg, new))
