"""An OpenAI-compatible model server over HTTP, with aiohttp as the client.

Why aiohttp and not httpx (the design's default): on this hot path the client decides most of
the cost. Measured with ``python -m bench.proxy --clients`` (one process, uvloop, keep-alive,
c=32, against nginx, 2-core machine shared with other work): httpx.AsyncClient about 300 req/s,
httpx2 about 1,550, aiohttp about 10,000. With 100 % mirroring every request makes two upstream
calls, so neither httpx could come near the issue's 2,000 req/s. This module is the one seam:
aiohttp's exceptions become UpstreamError subclasses in :func:`_translate` (reason words
timeout, connect, reset, protocol), and nothing above it imports aiohttp.

Shadow copies get a session (and connection pool) of their own, as in proxy/upstream/lean.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from proxy.config import UpstreamConfig
from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReset,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from proxy.upstream.base import Headers, UpstreamResponse, bearer, relayable

__all__ = ["HttpStream", "HttpUpstream"]

_URL_CACHE = 1024  # distinct paths remembered (passthrough paths may vary)


@contextlib.contextmanager
def _translate(name: str) -> Iterator[None]:
    """Map aiohttp and socket errors to the proxy's UpstreamError tree."""
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {name} timed out") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc
    except aiohttp.ClientResponseError as exc:
        raise UpstreamProtocolError(f"upstream {name} sent a broken answer: {exc}") from exc
    except (
        aiohttp.ClientPayloadError,  # the body ended early: the server went away mid-answer
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
        ConnectionError,
    ) as exc:
        raise UpstreamReset(f"upstream {name} closed the connection: {exc}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc


def _relayed(response: aiohttp.ClientResponse) -> Headers:
    return relayable(response.raw_headers)


@dataclass(slots=True)
class HttpStream:
    """A streamed answer: status, content type and the body's bytes as they arrive."""

    status: int
    content_type: str
    headers: Headers
    _response: aiohttp.ClientResponse
    _name: str

    async def chunks(self) -> AsyncIterator[bytes]:
        with _translate(self._name):
            async for chunk in self._response.content.iter_any():
                yield chunk


class HttpUpstream:
    """One model server reached over HTTP with a pooled keep-alive session."""

    #: ``timeout_s`` bounds the whole call (connect, answer, body): callers need no timer of theirs
    total_timeout = True

    def __init__(self, name: str, config: UpstreamConfig) -> None:
        if config.base_url is None:
            raise ValueError(f"upstream {name}: base_url is required for an HTTP upstream")
        self.name = name
        self.base_url = config.base_url.rstrip("/")
        self.shadow_capacity = config.shadow_max_connections
        self._config = config
        self._auth = bearer(config)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}  # shadow? -> its own pool
        self._default_timeout = aiohttp.ClientTimeout(
            total=config.timeout_seconds, sock_connect=config.connect_timeout_seconds
        )
        self._urls: dict[str, URL] = {}

    def _client(self, shadow: bool = False) -> aiohttp.ClientSession:
        session = self._sessions.get(shadow)
        if session is None:
            config = self._config
            connector = aiohttp.TCPConnector(
                limit=config.shadow_max_connections if shadow else config.max_connections,
                keepalive_timeout=config.idle_timeout_seconds,
                ttl_dns_cache=300,
            )
            session = self._sessions[shadow] = aiohttp.ClientSession(
                connector=connector,
                # one session serves every user: an upstream's cookies must never be replayed
                # to it for another user (and skipping the jar saves work on every request)
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                timeout=self._default_timeout,
            )
        return session

    def _headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        if self._auth is None:
            return headers
        merged = {k: v for k, v in headers.items() if k not in ("authorization", "api-key")}
        merged["authorization"] = self._auth
        return merged

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        """The session's own timeout object when it matches (no allocation per request)."""
        if timeout_s == self._default_timeout.total:
            return self._default_timeout
        return aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=self._config.connect_timeout_seconds
        )

    def _url(self, path: str) -> URL:
        """The parsed URL for ``path``, cached: yarl parsing is a visible per-request cost."""
        url = self._urls.get(path)
        if url is None:
            url = URL(self.base_url + path)
            if len(self._urls) < _URL_CACHE:
                self._urls[path] = url
        return url

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
        with _translate(self.name):
            async with self._client(shadow).request(
                method,
                self._url(path),
                data=body or None,
                headers=self._headers(headers),
                timeout=self._timeout(timeout_s),
            ) as response:
                data = await response.read()
                return UpstreamResponse(
                    status=response.status,
                    body=data,
                    content_type=response.headers.get("content-type", "application/json"),
                    headers=[] if shadow else _relayed(response),  # a copy's reach nobody
                )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
    ) -> AsyncIterator[HttpStream]:
        with _translate(self.name):
            response = await self._client(shadow).post(
                self._url(path),
                data=body,
                headers=self._headers(headers),
                timeout=self._timeout(timeout_s),
            )
        try:
            yield HttpStream(
                status=response.status,
                content_type=response.headers.get("content-type", "text/event-stream"),
                headers=[] if shadow else _relayed(response),
                _response=response,
                _name=self.name,
            )
        finally:
            if response.content.at_eof():
                response.release()  # the connection goes back to the pool
            else:
                response.close()  # abandoned mid-body: the connection cannot be reused

    async def ready(self) -> str | None:
        try:
            response = await self.send("GET", "/models", b"", {}, 2.0)
        except UpstreamError as exc:
            return exc.message
        return None if response.status < 500 else f"status {response.status}"

    async def aclose(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
