"""/healthz (the process lives), /readyz (Redis and upstreams answer), /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.routes.deps import json_response, runtime
from proxy.runtime import Runtime
from tunegate.errors import StoreUnavailable
from tunegate.redis import store_errors

__all__ = ["router"]

router = APIRouter()

_READY_TIMEOUT_S = 3.0


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


async def _redis_check(rt: Runtime) -> str | None:
    assert rt.redis is not None
    try:
        with store_errors("redis"):
            await rt.redis.ping()
    except StoreUnavailable as exc:
        return str(exc)
    return None


async def _bounded(check: Awaitable[str | None]) -> str | None:
    try:
        async with asyncio.timeout(_READY_TIMEOUT_S):
            return await check
    except TimeoutError:
        return f"no answer within {_READY_TIMEOUT_S} s"


@router.get("/readyz")
async def readyz(rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    """200 when Redis and every upstream answer, else 503; both with each check's result."""
    names = sorted(rt.upstreams)
    probes = [_redis_check(rt), *(rt.upstreams[n].ready() for n in names)]
    results = await asyncio.gather(*(_bounded(p) for p in probes))
    checks = {"redis": results[0] or "ok"}
    checks.update({f"upstream:{n}": r or "ok" for n, r in zip(names, results[1:], strict=True)})
    ok = all(r is None for r in results)
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": checks,
        "config_version": rt.config_version,
        # per experiment, the definition and state versions this replica applies now
        "experiments": {
            name: {"definition_version": d, "state_version": v}
            for name, (d, v) in (rt.table.versions() if rt.table else {}).items()
        },
        "pairlog_buffer": rt.pairlog.depth if rt.pairlog is not None else 0,
    }
    return json_response(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
