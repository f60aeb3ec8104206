"""The one ASGI helper the doubles share: read a request's whole body."""

from __future__ import annotations

from typing import Any

__all__ = ["read_body"]


async def read_body(receive: Any) -> bytes:
    """Every ``http.request`` chunk of the body, joined (the doubles bound nothing: tests only)."""
    raw = b""
    more = True
    while more:
        message = await receive()
        raw += message.get("body", b"")
        more = message.get("more_body", False)
    return raw
