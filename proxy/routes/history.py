"""The admin API's read-outs of one experiment: status, decisions, audit log, offline results.

``status`` is what an operator looks at first: the config, the live state, the latest decision
with its evidence and reasons, and whether it waits for approval. The lists are newest first,
except the audit log, which reads oldest first like a log (the newest ``count`` entries).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from proxy.routes.auth import Reader
from proxy.routes.deps import json_response
from proxy.routes.lookup import experiment_config, experiment_view, live_state, store
from tunegate import keys
from tunegate.decisions import latest_decision, read_decisions
from tunegate.records import decode_offline_result
from tunegate.redis import store_errors
from tunegate.state import read_audit

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["history"])

Count = Annotated[int, Query(ge=1, le=1000, description="how many, newest")]


@router.get("/experiments/{name}/status")
async def status(name: str, rt: Reader) -> Response:
    cfg = experiment_config(rt, name)
    state = await live_state(rt, cfg)
    assert rt.redis is not None
    with store("decision store"):
        latest = await latest_decision(rt.redis, cfg.name)
    body = {
        **experiment_view(rt, cfg, state),
        "latest_decision": latest.model_dump(mode="json") if latest else None,
        "waits_for_approval": bool(latest and latest.needs_approval and not latest.applied),
        "served_version": rt.table.state(cfg.name).version if rt.table else None,
    }
    return json_response(body)


@router.get("/experiments/{name}/decisions")
async def decisions(name: str, rt: Reader, count: Count = 20) -> Response:
    cfg = experiment_config(rt, name)
    assert rt.redis is not None
    with store("decision store"):
        found = await read_decisions(rt.redis, cfg.name, count)
    return json_response({"decisions": [d.model_dump(mode="json") for d in found]})


@router.get("/experiments/{name}/audit")
async def audit(name: str, rt: Reader, count: Count = 100) -> Response:
    cfg = experiment_config(rt, name)
    assert rt.redis is not None
    with store("audit log"):
        entries = await read_audit(rt.redis, cfg.name, count)
    return json_response({"audit": [e.model_dump(mode="json") for e in entries]})


@router.get("/experiments/{name}/offline")
async def offline(name: str, rt: Reader, count: Count = 20) -> Response:
    """The offline gate's results (``tunegate eval --record``), newest first."""
    cfg = experiment_config(rt, name)
    assert rt.redis is not None
    with store("offline results"):
        with store_errors("read offline results"):
            entries = await rt.redis.xrevrange(keys.offline(cfg.name), count=count)
        results = [decode_offline_result(fields) for _, fields in entries or [] if fields]
    return json_response({"offline": [r.model_dump(mode="json") for r in results]})
