"""The Upstream protocol: what the proxy needs from a model server, HTTP or in-process.

Bodies stay bytes end to end: the proxy rewrites only the ``model`` field, and the judge parses
the answer later. ``path`` is relative to the OpenAI ``/v1`` root, e.g. ``/chat/completions``.
Failures raise the ``UpstreamError`` subclasses of proxy/errors.py (timeouts, connection errors);
an error status from the server is a normal response whose ``status`` the caller inspects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from proxy.config import UpstreamConfig

__all__ = ["Upstream", "UpstreamResponse", "UpstreamStream", "bearer"]


@dataclass(slots=True)
class UpstreamResponse:
    """A complete (non-streaming) answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class UpstreamStream(Protocol):
    """An answer whose body arrives in pieces (SSE for ``stream: true``)."""

    status: int
    content_type: str

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (for SSE, whole events are not guaranteed)."""
        ...


class Upstream(Protocol):
    """One model server. Long-lived: entered once by the app's lifespan, closed by aclose()."""

    name: str

    async def send(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> UpstreamResponse:
        """Send one request and read the whole answer."""
        ...

    def stream(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> AbstractAsyncContextManager[UpstreamStream]:
        """POST one request and yield its answer as it arrives; exit closes the connection."""
        ...

    async def ready(self) -> str | None:
        """None when the server answers, else a short reason (used by /readyz)."""
        ...

    async def aclose(self) -> None: ...


def bearer(config: UpstreamConfig) -> str | None:
    """The Authorization value an upstream with its own key sends; None forwards the client's."""
    return f"Bearer {config.api_key.get_secret_value()}" if config.api_key is not None else None
