"""An OpenAI-compatible model server over plain HTTP, with the lean client of upstream/wire.py.

Why a second client beside aiohttp (proxy/upstream/http.py): with 100 % mirroring each request
makes two upstream calls, and py-spy put about a third of the single uvicorn worker's CPU inside
aiohttp's client. Measured with ``python -m bench.proxy --aiohttp`` (both clients in one run,
interleaved, JSON, c=32, nginx upstream, 2-core machine shared with other work): mirroring on
3,136 vs 2,067 req/s (3,638 vs 2,139 requests per CPU-second), mirroring off 4,842 vs 2,753.
It speaks only plain HTTP/1.1, so ``build_upstream`` picks it for ``http://`` base URLs and keeps
aiohttp for ``https://`` (TLS, proxies and redirects stay aiohttp's job; there the handshake and
encryption cost more than the client saves, and it was not measured).

This module is the seam for this client: :func:`_translate` maps its errors (timeouts, socket
errors, malformed answers) to the UpstreamError subclasses, and nothing above it sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from urllib.parse import urlsplit

import httptools

from proxy.config import UpstreamConfig
from proxy.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from proxy.upstream.base import UpstreamResponse, bearer
from proxy.upstream.wire import Connection, ConnectionPool, request_head

__all__ = ["LeanHttpUpstream", "LeanStream"]

#: Headers the client writes itself; a caller's copy is dropped.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@contextlib.contextmanager
def _translate(name: str) -> Iterator[None]:
    """Map the lean client's errors to the proxy's UpstreamError tree."""
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"upstream {name} timed out") from exc
    except httptools.HttpParserError as exc:
        raise UpstreamUnavailable(f"upstream {name} sent a broken answer: {exc}") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc


class LeanStream:
    """A streamed answer: status, content type, and the body's bytes as they arrive.

    Used as an async context manager by ``LeanHttpUpstream.stream``: entering sends the request
    and reads the headers; leaving returns the connection to the pool when the body was read to
    the end, and closes it otherwise.
    """

    __slots__ = ("_body", "_conn", "_request", "_timeout_s", "_upstream", "content_type", "status")

    def __init__(self, upstream: LeanHttpUpstream, request: bytes, body: bytes, timeout_s: float):
        self._upstream = upstream
        self._request = request
        self._body = body
        self._timeout_s = timeout_s
        self._conn: Connection | None = None
        self.status = 0
        self.content_type = "text/event-stream"

    async def __aenter__(self) -> LeanStream:
        self._conn = await self._upstream._exchange(
            self._request, self._body, self._timeout_s, streaming=True
        )
        self.status = self._conn.status
        self.content_type = self._conn.content_type or "text/event-stream"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.release()  # back to the pool when read to the end, else closed

    def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        assert conn is not None, "chunks() outside the stream's context"
        return _Chunks(conn, self._upstream.name)


class _Chunks:
    """The body's pieces as an async iterator (a plain object: no async generator to finalize)."""

    __slots__ = ("_conn", "_name")

    def __init__(self, conn: Connection, name: str) -> None:
        self._conn = conn
        self._name = name

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        with _translate(self._name):
            chunk = await self._conn.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk


class LeanHttpUpstream:
    """One model server reached over plain HTTP/1.1 with a keep-alive connection pool."""

    #: ``timeout_s`` bounds the whole call (connect, answer, body): callers need no timer of theirs
    total_timeout = True

    def __init__(self, name: str, config: UpstreamConfig) -> None:
        if config.base_url is None:
            raise ValueError(f"upstream {name}: base_url is required for an HTTP upstream")
        url = urlsplit(config.base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"upstream {name}: the lean client takes http:// URLs only")
        self.name = name
        self.base_url = config.base_url.rstrip("/")
        self._host = url.hostname
        self._port = url.port or 80
        self._host_header = url.netloc.rsplit("@", 1)[-1]
        self._prefix = url.path.rstrip("/")
        self._config = config
        self._auth = bearer(config)
        self._connections: ConnectionPool | None = None

    def _pool(self) -> ConnectionPool:
        pool = self._connections
        if pool is None:
            pool = self._connections = ConnectionPool(
                self._host,
                self._port,
                max_connections=self._config.max_connections,
                connect_timeout_s=self._config.connect_timeout_seconds,
            )
        return pool

    def _request(self, method: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
        items = [(k, v) for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
        if self._auth is not None:
            items = [(k, v) for k, v in items if k.lower() not in ("authorization", "api-key")]
            items.append(("authorization", self._auth))
        return request_head(method, self._prefix + path, self._host_header, items, length)

    async def _exchange(
        self, request: bytes, body: bytes, timeout_s: float, *, streaming: bool, head: bool = False
    ) -> Connection:
        """Send on a pooled connection and read the headers (streaming) or the whole answer."""
        pool = self._pool()
        loop = pool.loop
        deadline = loop.time() + timeout_s
        with _translate(self.name):
            conn = pool.take_idle()  # the usual case: no await, no timer
            if conn is None:
                async with asyncio.timeout_at(deadline):
                    conn = await pool.acquire()
            try:
                conn.start(
                    request,
                    body,
                    streaming=streaming,
                    head=head,
                    timeout_s=max(deadline - loop.time(), 0.0),
                )
                await conn.wait()
            except BaseException:
                conn.close()
                conn.release()
                raise
        return conn

    async def send(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> UpstreamResponse:
        request = self._request(method, path, headers, len(body))
        conn = await self._exchange(
            request, body, timeout_s, streaming=False, head=method == "HEAD"
        )
        response = UpstreamResponse(
            status=conn.status,
            body=conn.body(),
            content_type=conn.content_type or "application/json",
        )
        conn.release()
        return response

    def stream(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> LeanStream:
        return LeanStream(self, self._request("POST", path, headers, len(body)), body, timeout_s)

    async def ready(self) -> str | None:
        try:
            response = await self.send("GET", "/models", b"", {}, 2.0)
        except UpstreamError as exc:
            return exc.message
        return None if response.status < 500 else f"status {response.status}"

    async def aclose(self) -> None:
        if self._connections is not None:
            self._connections.close()
            self._connections = None
