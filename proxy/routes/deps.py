"""How FastAPI routes reach the app's Runtime (set on ``app.state.runtime`` by create_app)."""

from __future__ import annotations

from typing import cast

import orjson
from fastapi import Request, Response

from proxy.errors import Unavailable
from proxy.runtime import Runtime

__all__ = ["json_response", "runtime"]


def runtime(request: Request) -> Runtime:
    """The app's Runtime; 503 until the lifespan has started it."""
    rt = cast(Runtime, request.app.state.runtime)  # set by create_app, typed there
    if not rt.ready:
        raise Unavailable("the proxy is starting")
    return rt


def json_response(content: object, status_code: int = 200) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")
