"""The Upstream protocol: what the proxy needs from a model server, HTTP or in-process.

Bodies stay bytes end to end: the proxy rewrites only the ``model`` field, and the judge parses
the answer later. ``path`` is relative to the OpenAI ``/v1`` root, e.g. ``/chat/completions``.
Failures raise the ``UpstreamError`` subclasses of proxy/errors.py (timeouts, connection errors);
an error status from the server is a normal response whose ``status`` the caller inspects.

Shadow isolation: ``shadow=True`` marks a mirrored copy. Every upstream keeps such calls apart
from served ones by construction: HTTP upstreams give them a connection pool of their own
(``shadow_max_connections``), in-process ones a queue of their own that the batcher serves only
with the room served jobs leave. ``shadow_capacity`` is how many copies it takes at once; the
shadow runner never starts more, so a copy never waits for a connection either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from proxy.config import UpstreamConfig

__all__ = ["Headers", "Upstream", "UpstreamResponse", "UpstreamStream", "bearer", "relayable"]

#: Response headers to relay to the client, as ASGI wants them.
Headers = list[tuple[bytes, bytes]]

#: Headers never relayed: hop-by-hop ones (RFC 9110 7.6.1), framing (the proxy frames its own
#: answer), and those the proxy's server writes itself (date, server) or sets (content-type).
_NOT_RELAYED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate",
        b"proxy-authorization", b"te", b"trailer", b"transfer-encoding", b"upgrade",
        b"content-length", b"content-type", b"date", b"server",
    }
)  # fmt: skip


def relayable(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The headers of an upstream answer that the client gets, names lower-cased."""
    return [
        (lower, value) for name, value in headers if (lower := name.lower()) not in _NOT_RELAYED
    ]


@dataclass(slots=True)
class UpstreamResponse:
    """A complete (non-streaming) answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Headers = field(default_factory=list)  # relayable ones only (see ``relayable``)


class UpstreamStream(Protocol):
    """An answer whose body arrives in pieces (SSE for ``stream: true``)."""

    status: int
    content_type: str
    headers: Headers  # relayable ones only

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (for SSE, whole events are not guaranteed)."""
        ...


class Upstream(Protocol):
    """One model server. Long-lived: entered once by the app's lifespan, closed by aclose()."""

    name: str
    #: shadow copies it takes at once without any waiting behind another call
    shadow_capacity: int

    async def send(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
    ) -> UpstreamResponse:
        """Send one request and read the whole answer."""
        ...

    def stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
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
