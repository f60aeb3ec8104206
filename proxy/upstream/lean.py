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
errors, malformed answers) to the UpstreamError subclasses, each with its reason word (timeout,
connect, reset, protocol), and nothing above it sees them.

Two pools per upstream: served calls and shadow copies never share a connection or a place in
the queue for one (see proxy/upstream/base.py). A request that fails on a *reused* keep-alive
connection before any answer arrived (the server closed it as we wrote) is sent once more on a
new connection; idle connections are closed after ``idle_timeout_seconds``, below the common
server-side keep-alive of 5 s, so that race is rare in the first place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from types import TracebackType
from urllib.parse import urlsplit

import httptools

from proxy.config import UpstreamConfig
from proxy.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReset,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from proxy.upstream.base import Headers, UpstreamResponse, bearer, relayable
from proxy.upstream.wire import Connection, ConnectionPool, ServerClosed, checked_head, framing

__all__ = ["LeanHttpUpstream", "LeanStream"]

#: Headers the client writes itself; a caller's copy is dropped.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: After a refused connect, shadow copies fail at once for this long (served calls still try).
_REFUSED_HOLD_S = 0.1
#: The server closed or reset the connection after it was established.
_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ServerClosed)
#: Checked request heads kept per upstream (each at most _HEAD_KEPT_BYTES): the method, path and
#: headers of most requests repeat, so the head is built and checked once, not twice a request.
#: Full, the cache is emptied (headers unique per request, e.g. a request id, only refill it).
_HEADS_KEPT = 512
_HEAD_KEPT_BYTES = 4096


@contextlib.contextmanager
def _translate(name: str, *, connecting: bool = False) -> Iterator[None]:
    """Map the lean client's errors to the proxy's UpstreamError tree (one reason word each)."""
    try:
        yield
    except TimeoutError as exc:
        if connecting:
            raise UpstreamUnavailable(f"upstream {name}: connect timed out") from exc
        raise UpstreamTimeout(f"upstream {name} timed out") from exc
    except httptools.HttpParserError as exc:
        raise UpstreamProtocolError(f"upstream {name} sent a broken answer: {exc}") from exc
    except ConnectionRefusedError as exc:
        raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc
    except _RESETS as exc:
        if connecting:
            raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc
        raise UpstreamReset(f"upstream {name} closed the connection: {exc}") from exc
    except OSError as exc:
        raise UpstreamUnavailable(f"upstream {name} unreachable: {exc}") from exc


def _headers(conn: Connection) -> Headers:
    """The relayable headers of the answer on ``conn`` (the parser's list of name/value bytes)."""
    return relayable(conn.headers)


class LeanStream:
    """A streamed answer: status, content type, and the body's bytes as they arrive.

    Used as an async context manager by ``LeanHttpUpstream.stream``: entering sends the request
    and reads the headers; leaving returns the connection to the pool when the body was read to
    the end, and closes it otherwise.
    """

    __slots__ = (
        "_body",
        "_conn",
        "_request",
        "_shadow",
        "_timeout_s",
        "_upstream",
        "content_type",
        "headers",
        "status",
    )

    def __init__(
        self,
        upstream: LeanHttpUpstream,
        request: bytes,
        body: bytes,
        timeout_s: float,
        shadow: bool,
    ) -> None:
        self._upstream = upstream
        self._request = request
        self._body = body
        self._timeout_s = timeout_s
        self._shadow = shadow
        self._conn: Connection | None = None
        self.status = 0
        self.content_type = "text/event-stream"
        self.headers: Headers = []

    async def __aenter__(self) -> LeanStream:
        self._conn = conn = await self._upstream._exchange(
            self._request, self._body, self._timeout_s, streaming=True, shadow=self._shadow
        )
        self.status = conn.status
        self.content_type = conn.content_type or "text/event-stream"
        if not self._shadow:  # a copy's headers reach nobody
            self.headers = _headers(conn)
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
        self.shadow_capacity = config.shadow_max_connections
        self._host = url.hostname
        self._port = url.port or 80
        self._host_header = url.netloc.rsplit("@", 1)[-1]
        self._prefix = url.path.rstrip("/")
        self._config = config
        self._auth = bearer(config)
        self._heads: dict[tuple[object, ...], bytes] = {}  # see _HEADS_KEPT
        self._served: ConnectionPool | None = None
        self._shadow: ConnectionPool | None = None
        self.retries = 0  # requests sent again after a reused connection failed unanswered
        self.refused_fast = 0  # shadow copies failed at once after a refused connect
        self._refused_until = 0.0  # loop time until which shadow copies do not try to connect

    def _pool(self, shadow: bool) -> ConnectionPool:
        pool = self._shadow if shadow else self._served
        if pool is None:
            pool = ConnectionPool(
                self._host,
                self._port,
                max_connections=(
                    self._config.shadow_max_connections if shadow else self._config.max_connections
                ),
                connect_timeout_s=self._config.connect_timeout_seconds,
                keepalive_s=self._config.idle_timeout_seconds,
                max_head_bytes=self._config.max_response_head_bytes,  # (Helper E: limits)
                max_body_bytes=self._config.max_response_body_bytes,
            )
            if shadow:
                self._shadow = pool
            else:
                self._served = pool
        return pool

    def _request(self, method: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
        """The checked request head (UnsafeRequest from wire.checked_head), built once per
        method, path and headers: a kept one is the same bytes a new one would be."""
        key = (method, path, *headers.items())
        head = self._heads.get(key)
        if head is None:
            items = [(k, v) for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
            if self._auth is not None:
                items = [(k, v) for k, v in items if k.lower() not in ("authorization", "api-key")]
                items.append(("authorization", self._auth))
            head = checked_head(method, self._prefix + path, self._host_header, items)
            if len(head) <= _HEAD_KEPT_BYTES:
                if len(self._heads) >= _HEADS_KEPT:
                    self._heads.clear()
                self._heads[key] = head
        return head + framing(method, length)

    async def _connection(
        self, pool: ConnectionPool, deadline: float, shadow: bool = False
    ) -> Connection:
        """An idle connection (no await, the usual case) or a new one within the deadline.

        A shadow copy to a server that refused a connection less than ``_REFUSED_HOLD_S`` ago
        fails at once, as ``connect``, without a socket: with the candidate down, one copy per
        hold period tries, and the rest cost no syscall (served calls always try).
        """
        conn = pool.take_idle()
        if conn is not None:
            return conn
        loop = pool.loop
        if shadow and loop.time() < self._refused_until:
            self.refused_fast += 1
            raise UpstreamUnavailable(f"upstream {self.name} unreachable: refused just now")
        try:
            with _translate(self.name, connecting=True):
                async with asyncio.timeout_at(deadline):
                    return await pool.acquire()
        except UpstreamUnavailable as exc:
            if loop.time() >= deadline:  # the whole call's deadline, not the connect's
                raise UpstreamTimeout(f"upstream {self.name} timed out") from exc.__cause__
            if isinstance(exc.__cause__, ConnectionRefusedError):
                self._refused_until = loop.time() + _REFUSED_HOLD_S
            raise

    async def _exchange(
        self,
        request: bytes,
        body: bytes,
        timeout_s: float,
        *,
        streaming: bool,
        shadow: bool = False,
        head: bool = False,
    ) -> Connection:
        """Send on a pooled connection and read the headers (streaming) or the whole answer."""
        pool = self._pool(shadow)
        loop = pool.loop
        deadline = loop.time() + timeout_s
        for attempt in (0, 1):
            conn = await self._connection(pool, deadline, shadow)
            try:
                with _translate(self.name):
                    if conn.transport is None:  # lost between the hand-over and now
                        raise ServerClosed("the server closed the connection")
                    conn.start(
                        request,
                        body,
                        streaming=streaming,
                        head=head,
                        timeout_s=max(deadline - loop.time(), 0.0),
                    )
                    await conn.wait()
            except UpstreamReset:
                unanswered = conn.reused and not conn.answered
                conn.close()
                conn.release()
                if attempt == 0 and unanswered:  # the server closed it as we wrote: no answer,
                    self.retries += 1  # so the request was not processed; once more, new socket
                    continue
                raise
            except BaseException:
                conn.close()
                conn.release()
                raise
            return conn
        raise AssertionError("unreachable: the second attempt returns or raises")

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
        request = self._request(method, path, headers, len(body))
        conn = await self._exchange(
            request, body, timeout_s, streaming=False, shadow=shadow, head=method == "HEAD"
        )
        response = UpstreamResponse(
            status=conn.status,
            body=conn.body(),
            content_type=conn.content_type or "application/json",
            headers=[] if shadow else _headers(conn),  # a copy's headers reach nobody
        )
        conn.release()
        return response

    def stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
    ) -> LeanStream:
        request = self._request("POST", path, headers, len(body))
        return LeanStream(self, request, body, timeout_s, shadow)

    async def ready(self) -> str | None:
        try:
            response = await self.send("GET", "/models", b"", {}, 2.0)
        except UpstreamError as exc:
            return exc.message
        return None if response.status < 500 else f"status {response.status}"

    async def aclose(self) -> None:
        for pool in (self._served, self._shadow):
            if pool is not None:
                pool.close()
        self._served = self._shadow = None
