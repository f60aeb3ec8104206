"""GET /v1/models: the experiment names clients may request, in the OpenAI list shape."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from proxy.routes.deps import json_response
from proxy.runtime import Runtime

__all__ = ["router"]

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    data = [
        {"id": e.name, "object": "model", "created": 0, "owned_by": "tunegate"}
        for e in rt.configs()
    ]
    return json_response({"object": "list", "data": data})
