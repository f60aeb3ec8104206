"""The admin API's experiment CRUD: create, edit and delete definitions at run time.

With ``proxy.experiments_from: redis``, the default (409 with ``file``: the file is the
definition). Each write is compare-and-set on the definition's version
(tunegate/definitions.py): create expects none, edit and delete name the version they read (409
when it moved). This replica applies the change before it answers; the others on the pub/sub
message, within a second. An arm must name an upstream of this proxy's config (400 otherwise).
Deleting keeps the experiment's history (pairs, verdicts, decisions, audit) in Redis.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from proxy.errors import BadRequest, Conflict
from proxy.routes.auth import Writer
from proxy.routes.deps import json_response
from proxy.routes.lookup import experiment_config, experiment_view, live_state, store
from proxy.runtime import Runtime
from tunegate.definitions import delete_definition, write_definition
from tunegate.experiments import ExperimentConfig

__all__ = ["DefinitionChange", "router"]

router = APIRouter(prefix="/admin", tags=["experiments"])


class DefinitionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: ExperimentConfig
    expected_version: int = Field(ge=1, description="the definition_version this edit is based on")


def _live(rt: Runtime) -> None:
    if rt.config.experiments_from != "redis":
        raise Conflict(
            "experiment definitions come from the config file here"
            " (set proxy.experiments_from: redis to manage them at run time)"
        )


def _check_upstreams(rt: Runtime, cfg: ExperimentConfig) -> None:
    for field, arm in (("control", cfg.control), ("candidate", cfg.candidate)):
        if arm.upstream not in rt.upstream_configs:
            known = ", ".join(sorted(rt.upstream_configs)) or "none"
            raise BadRequest(
                f"{field}.upstream: unknown upstream '{arm.upstream}' (known: {known})",
                param=f"{field}.upstream",
            )


async def _applied(rt: Runtime, cfg: ExperimentConfig) -> Response:
    assert rt.table is not None
    await rt.table.refresh()  # this replica serves the change before it answers
    return json_response(experiment_view(rt, cfg, await live_state(rt, cfg)))


@router.post("/experiments", status_code=201)
async def create_experiment(definition: ExperimentConfig, rt: Writer) -> Response:
    _live(rt)
    _check_upstreams(rt, definition)
    assert rt.redis is not None
    with store("definition store"):
        version = await write_definition(rt.redis, definition, 0)
    if version is None:
        raise Conflict(f"an experiment named '{definition.name}' exists", param="name")
    response = await _applied(rt, definition)
    response.status_code = 201
    return response


@router.put("/experiments/{name}")
async def edit_experiment(name: str, change: DefinitionChange, rt: Writer) -> Response:
    _live(rt)
    experiment_config(rt, name)
    if change.definition.name != name:
        raise BadRequest("definition.name must be the experiment's name", param="name")
    _check_upstreams(rt, change.definition)
    assert rt.redis is not None
    with store("definition store"):
        version = await write_definition(rt.redis, change.definition, change.expected_version)
    if version is None:
        raise Conflict(
            f"the definition of '{name}' changed meanwhile (expected version"
            f" {change.expected_version})",
            param="expected_version",
        )
    return await _applied(rt, change.definition)


@router.delete("/experiments/{name}")
async def delete_experiment(
    name: str, rt: Writer, expected_version: Annotated[int, Query(ge=1)]
) -> Response:
    _live(rt)
    experiment_config(rt, name)
    assert rt.redis is not None and rt.table is not None
    with store("definition store"):
        deleted = await delete_definition(rt.redis, name, expected_version)
    if not deleted:
        raise Conflict(
            f"the definition of '{name}' changed meanwhile (expected version {expected_version})",
            param="expected_version",
        )
    await rt.table.refresh()
    return json_response({"deleted": name})
