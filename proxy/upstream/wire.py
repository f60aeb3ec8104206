"""HTTP/1.1 client connections on asyncio Protocols with httptools; a keep-alive pool per upstream.

Why not aiohttp for plain-HTTP upstreams: with 100 % mirroring every proxied request makes two
upstream calls, and py-spy put about a third of the single worker's CPU inside aiohttp's client
(request/response objects, header multidicts, stream readers, timers). This client does only what
the proxy needs: one request at a time per connection, bodies as bytes, the response's status,
content type and body (whole, or chunks as they arrive). See proxy/upstream/lean.py for the
measured difference and for how errors become the proxy's UpstreamError tree.

Errors raised here are the builtin kinds the seam translates: ``TimeoutError``, ``OSError``
(``ConnectionError`` for a server that closed mid-answer) and ``httptools.HttpParserError``
(``BrokenAnswer``, a subclass, for what this module refuses on top of llhttp).

Strictness: llhttp (strict, as httptools runs it) refuses most of what a proxy must; each
answer's head is buffered and its status line checked before llhttp sees it, and its framing
after, so that in all: refused are a
head over ``max_head_bytes``, obs-fold (continuation lines), bare LF line ends, control bytes in
a header, a status line that is not ``HTTP/1.x NNN reason``, more than one Content-Length (even
equal ones), Content-Length with Transfer-Encoding, a Transfer-Encoding other than ``chunked``, a
body over ``max_body_bytes``, and any byte after the end of an answer (a second answer in the
same read, or unasked for later). llhttp does the rest (chunk sizes, lengths) and refuses bad
chunk sizes itself. tests/proxy/test_wire_response.py checks it against h11: nothing h11 refuses
is accepted, and what both accept reads the same.

Connection reuse: a connection goes back to the pool only when its answer was read to the end,
the server allowed keep-alive (no ``Connection: close``, HTTP/1.1) and nothing failed; a timeout,
an error, an abandoned stream, a HEAD answer or unexpected bytes close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Iterable
from typing import cast

import httptools

from proxy.errors import BadRequest

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_HEAD_BYTES",
    "BrokenAnswer",
    "Connection",
    "ConnectionPool",
    "ServerClosed",
    "UnsafeRequest",
    "checked_head",
    "framing",
    "request_head",
]

_HIGH_WATER = 256 * 1024  # buffered stream bytes before reading pauses
DEFAULT_MAX_HEAD_BYTES = 64 * 1024
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

#: A status line: ``HTTP/1.x NNN`` (NNN 100-599), then its end or a space and a reason phrase of
#: HTAB, visible ASCII, SP and obs-text (no other control byte), then CRLF. One match per answer:
#: separate prefix and control-byte checks cost four C calls and a Python call more.
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [1-5][0-9]{2}(?: [\t\x20-\x7e\x80-\xff]*)?\r\n")


def _head_problem(head: bytes) -> str | None:
    """Why ``head`` (status line and header lines, each ending in CRLF) is refused, or None.

    Only what llhttp (strict, as httptools runs it) lets through is checked here: a status
    line that is not ``HTTP/1.x NNN`` with NNN in 100-599, and control bytes in its reason
    phrase. llhttp itself refuses bare CR or LF, control bytes in header values, obs-fold,
    invalid header names, duplicate Content-Length and Content-Length with Transfer-Encoding
    (tests/proxy/test_wire_response.py checks the whole against h11).
    """
    if _STATUS_LINE.match(head) is not None:
        return None
    if _STATUS_PREFIX.match(head) is None:
        return "malformed status line"
    return "a control byte in the status line"


#: The answer headers whose values the client reads (the rest are only relayed).
_READ_HEADERS = frozenset({b"content-type", b"content-length", b"transfer-encoding"})

#: What a status line starts with (only to name what is wrong with one _STATUS_LINE refused).
_STATUS_PREFIX = re.compile(rb"HTTP/1\.[01] [1-5][0-9]{2}[ \r]")


class BrokenAnswer(httptools.HttpParserError):
    """An answer this client refuses to interpret (it would have to guess)."""


class ServerClosed(ConnectionError):
    """The server closed the connection before the answer was complete."""


class Connection(asyncio.Protocol):
    """One TCP connection: writes a request, parses its answer with httptools."""

    __slots__ = (
        "_body",
        "_buffered",
        "_chunks",
        "_complete",
        "_deadline",
        "_exc",
        "_framed",
        "_head",
        "_head_only",
        "_headers_done",
        "_in_head",
        "_lengths",
        "_loop",
        "_max_body",
        "_max_head",
        "_paused",
        "_pool",
        "_received",
        "_streaming",
        "_te",
        "_timer",
        "_waiter",
        "content_type",
        "headers",
        "idle_since",
        "keep_alive",
        "parser",
        "reused",
        "status",
        "transport",
    )

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool: ConnectionPool | None = pool  # None once it has left the pool
        self._loop = pool.loop
        self.transport: asyncio.Transport | None = None
        # made in connection_made and dropped in connection_lost: the parser holds this object's
        # callbacks, a reference cycle; made here, every failed connect would leave that cycle
        # for the cyclic collector (measured: 10 objects per refused connect under uvloop)
        self.parser: httptools.HttpResponseParser
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # loop time by which the pending answer must be complete
        self._exc: BaseException | None = None
        self._body: list[bytes] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._streaming = False
        self._head_only = False
        self._headers_done = False
        self._complete = True  # no answer pending
        self._framed = False
        self._head = b""  # an answer head not yet complete
        self._in_head = False  # reading a head (llhttp is fed only checked heads)
        self._lengths = 0  # Content-Length headers in this head
        self._te = False  # a Transfer-Encoding: chunked in this head
        self._received = 0  # body bytes of this answer
        self._max_head = getattr(pool, "max_head_bytes", DEFAULT_MAX_HEAD_BYTES)
        self._max_body = getattr(pool, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        self.status = 0
        self.content_type: str | None = None
        self.headers: list[tuple[bytes, bytes]] = []  # the answer's, as received
        self.keep_alive = False
        self.idle_since = 0.0
        self.reused = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio subclass
        self.parser = httptools.HttpResponseParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            while data:
                if self._complete:  # bytes nobody asked for: the connection cannot be trusted
                    raise BrokenAnswer("bytes from the server after the end of its answer")
                if not self._in_head:
                    self.parser.feed_data(data)
                    return
                data = self._head_received(data)
        except httptools.HttpParserError as exc:
            self._fail(self._exc or exc)

    def _head_received(self, data: bytes) -> bytes:
        """Buffer a head until it is complete, check it, feed it to llhttp; the bytes after it."""
        buffered = self._head + data if self._head else data
        end = buffered.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self._max_head:
            if end >= 0 or len(buffered) > self._max_head:
                raise BrokenAnswer(f"answer head larger than {self._max_head} bytes")
            if buffered.count(b"\n") != buffered.count(b"\r\n"):  # refuse now, not at the limit
                raise BrokenAnswer("a bare LF in the answer head")
            self._head = buffered
            return b""
        self._head = b""
        if _STATUS_LINE.match(buffered) is None:
            raise BrokenAnswer(_head_problem(buffered) or "malformed status line")
        self._in_head = False  # on_headers_complete sets it again after a 1xx head
        if buffered[9] != 0x31:  # not a 1xx: no second head to check, so one feed for all
            self.parser.feed_data(buffered)  # (bytes after the answer fail in on_message_begin
            return b""  # or as llhttp errors)
        self.parser.feed_data(buffered[: end + 4])
        return buffered[end + 4 :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self._complete:
            if self._headers_done and not self._framed and not self._head_only:
                self.on_message_complete()  # a body delimited by the close itself
            else:
                self._fail(exc or ServerClosed("the server closed the connection"))
        if self._pool is not None:
            self._pool.lost(self)
        with contextlib.suppress(AttributeError):  # never connected: no parser
            del self.parser  # breaks the cycle: a closed connection is freed by refcount

    def pause_writing(self) -> None:  # request bodies are small and bounded: nothing to do
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # a second answer to one request (never reached: checked above)
            raise BrokenAnswer("a second answer from the server")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a trailer of a chunked body: not relayed, not framing
        self.headers.append((name, value))
        lower = name.lower()
        if lower not in _READ_HEADERS:  # most headers: one set lookup, not three compares
            return
        if lower == b"content-type":
            self.content_type = value.decode("latin-1")
        elif lower == b"content-length":
            self._lengths += 1
            self._framed = True
        else:  # transfer-encoding
            if self._te or value.lower() != b"chunked":
                raise BrokenAnswer("a Transfer-Encoding other than one 'chunked'")
            self._te = True
            self._framed = True

    def on_headers_complete(self) -> None:
        if self._lengths > 1 or (self._lengths and self._te):
            raise BrokenAnswer("more than one Content-Length, or one with Transfer-Encoding")
        self.status = self.parser.get_status_code()
        if self.status < 200:  # 1xx interim answer: llhttp parses the real one next
            self.content_type = None
            self.headers = []
            self._lengths = 0
            self._te = False
            self._framed = False
            self._in_head = True
            return
        self._headers_done = True
        self.keep_alive = self.parser.should_keep_alive()
        if self.status in (204, 304):
            self._framed = True
        if self._head_only:
            self.keep_alive = False  # a HEAD answer announces a body it does not send
            self.on_message_complete()
        elif self._streaming:
            self._wake()

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        if self._received > self._max_body:
            raise BrokenAnswer(f"answer body larger than {self._max_body} bytes")
        if self._streaming:
            self._chunks.append(body)
            self._buffered += len(body)
            if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._complete or not self._headers_done:
            return  # the end of a 1xx interim answer: the real one follows
        self._complete = True  # the timer, if any, finds nothing pending (see start)
        self._wake()

    # -- request lifecycle -----------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._exc is None:
            self._exc = exc
        self._cancel_timer()
        self.keep_alive = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self._complete:  # answered in time: the timer outlived its request
            return
        left = self._deadline - self._loop.time()
        if left > 0:  # set for an earlier request on this connection: sleep for what is left
            self._timer = self._loop.call_later(left, self._on_timeout)
            return
        self._fail(TimeoutError())

    def start(
        self, request: bytes, body: bytes, *, streaming: bool, head: bool, timeout_s: float
    ) -> None:
        """Write one request; the answer is read by :meth:`wait` (and :meth:`next_chunk`)."""
        assert self.transport is not None
        self._body = []
        self._chunks.clear()
        self._buffered = 0
        self._streaming = streaming
        self._head_only = head
        self._headers_done = False
        self._framed = False
        self._head = b""
        self._in_head = True
        self._lengths = 0
        self._te = False
        self._received = 0
        self._complete = False
        self.status = 0
        self.content_type = None
        self.headers = []
        self.keep_alive = False
        # One timer per connection, moved lazily (as proxy/http_hardened.py does for client
        # heads): a timer created and cancelled per request cost more than the deadline check
        self._deadline = deadline = self._loop.time() + timeout_s
        timer = self._timer
        if timer is not None and timer.when() > deadline:  # set for a later deadline
            timer.cancel()
            timer = None
        if timer is None:
            self._timer = self._loop.call_at(deadline, self._on_timeout)
        if not body:
            self.transport.write(request)
        elif len(body) <= 16384:
            self.transport.write(request + body)  # one segment; the copy is cheaper than a syscall
        else:
            self.transport.writelines((request, body))

    async def wait(self) -> None:
        """Until the headers (streaming) or the whole answer (otherwise) have arrived."""
        done = self._headers_done if self._streaming else self._complete
        while not done:
            if self._exc is not None:
                raise self._exc
            self._waiter = self._loop.create_future()
            await self._waiter
            done = self._headers_done if self._streaming else self._complete
        if self._exc is not None:  # failed, or refused after its end (e.g. a second answer)
            raise self._exc

    def body(self) -> bytes:
        parts = self._body
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def next_chunk(self) -> bytes | None:
        """The body bytes that arrived since the last call (joined); None at the end."""
        while True:
            if self._chunks:
                chunks = self._chunks
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._exc is not None:
                raise self._exc
            if self._complete:
                return None
            self._waiter = self._loop.create_future()
            await self._waiter

    @property
    def answered(self) -> bool:
        """Whether any byte of an answer to the current request arrived (then no retry is safe)."""
        return self.status != 0 or self._headers_done or bool(self._head)

    @property
    def reusable(self) -> bool:
        return (
            self._complete
            and self._exc is None
            and self.keep_alive
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def release(self) -> None:
        """Done with this answer: back to its pool when reusable, else closed."""
        if self._pool is not None:
            self._pool.release(self)
        else:
            self.close()

    def close(self) -> None:
        self._cancel_timer()
        self._complete = True
        if self.transport is not None:
            self.transport.abort()

    def abandon(self) -> None:
        """Forget a connection whose connect was given up (a timeout or a cancel).

        uvloop may have connected and called ``connection_made`` before the cancel arrived, and
        then closes the transport without ``connection_lost``: the transport, this protocol and
        its parser would stay in reference cycles for the cyclic collector (measured: one
        Connection with its parser, transport and bound methods per timed-out connect).
        """
        self._pool = None
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.abort()
        with contextlib.suppress(AttributeError):  # never connected: no parser
            del self.parser


class ConnectionPool:
    """Keep-alive connections to one host:port, at most ``max_connections`` open at once.

    ``acquire`` hands out an idle connection (most recently used first), opens a new one while
    under the cap, or waits for one to be released. Idle connections older than
    ``keepalive_s`` are closed instead of reused.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_connections: int,
        connect_timeout_s: float,
        keepalive_s: float = 30.0,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.max_head_bytes = max_head_bytes  # per answer, else BrokenAnswer (a 502)
        self.max_body_bytes = max_body_bytes
        self.loop = asyncio.get_running_loop()
        self._idle: deque[Connection] = deque()
        self._open = 0  # idle + busy + connecting
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._closed = False

    @property
    def open_count(self) -> int:
        return self._open

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def take_idle(self) -> Connection | None:
        """An idle, open connection, or None (no await: the fast path of every request)."""
        if self._closed:
            return None
        idle = self._idle
        if not idle:
            return None
        now = self.loop.time()
        stale = now - self.keepalive_s
        while idle and idle[0].idle_since < stale:  # oldest first: close the expired ones
            self._discard(idle.popleft())
        while idle:
            conn = idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                conn.reused = True
                return conn
            self._discard(conn)
        return None

    async def acquire(self) -> Connection:
        """A connection ready for one request (the caller bounds the wait with its deadline)."""
        if self._closed:
            raise ServerClosed("the upstream client is closed")
        conn = self.take_idle()
        if conn is not None:
            return conn
        while self._open >= self.max_connections:
            waiter: asyncio.Future[Connection | None] = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._pass_on(waiter.result())  # handed over just as we gave up
                else:
                    self._remove_waiter(waiter)
                raise
            if handed is not None:
                return handed
            # None: a slot was freed for us to open a connection in
            if self._open < self.max_connections:
                break
        self._open += 1
        made: list[Connection] = []

        def protocol() -> Connection:
            made.append(Connection(self))
            return made[-1]

        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await self.loop.create_connection(protocol, self.host, self.port)
        except BaseException:
            self._open -= 1
            for abandoned in made:  # a connect given up after uvloop made the protocol
                abandoned.abandon()
            self._wake_waiter()
            raise
        return conn

    def release(self, conn: Connection) -> None:
        """Return ``conn`` after its answer: back to the pool when reusable, else closed."""
        if conn.reusable and not self._closed:
            self._pass_on(conn)
        else:
            conn.close()
            conn._exc = None  # raised already; its traceback's frames hold ``conn`` (a cycle)
            self._discard(conn)

    def _pass_on(self, conn: Connection | None) -> None:
        """Hand ``conn`` (or a free slot when None) to the first waiter, else keep it idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is not None:
            conn.idle_since = self.loop.time()
            self._idle.append(conn)

    def _remove_waiter(self, waiter: asyncio.Future[Connection | None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _discard(self, conn: Connection) -> None:
        """Forget ``conn`` (closed or closing); its slot goes to a waiter, if any."""
        if conn._pool is not self:
            return
        conn._pool = None
        conn.close()
        self._open -= 1
        self._wake_waiter()

    def _wake_waiter(self) -> None:
        if self._waiters and self._open < self.max_connections:
            self._pass_on(None)

    def lost(self, conn: Connection) -> None:
        """A connection's socket closed: an idle one leaves the pool now."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._discard(conn)

    def close(self) -> None:
        """Close the idle connections; busy ones close when released."""
        self._closed = True
        while self._idle:
            self._discard(self._idle.pop())
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ServerClosed("the upstream client is closed"))


#: A method or header name: an RFC 9110 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Controls never allowed in a header value (all but HTAB), and DEL.
_VALUE_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_CHECKED_NAMES: set[str] = set()  # header names that passed the token check


class UnsafeRequest(BadRequest):
    """A request line or header that cannot be written as exactly one HTTP/1.1 request."""


def _name_ok(name: str) -> bool:
    if name in _CHECKED_NAMES:
        return True
    if _TOKEN.fullmatch(name) is None:
        return False
    if len(_CHECKED_NAMES) < 4096:  # a few dozen in practice; bounded against odd clients
        _CHECKED_NAMES.add(name)
    return True


def _value_ok(value: str) -> bool:
    # isprintable() is False for every control byte (and for HTAB and C1 obs-text, which the
    # regex then allows): the common case costs one C call
    return value.isprintable() or _VALUE_UNSAFE.search(value) is None


def request_head(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]], length: int
) -> bytes:
    """The request line and headers, ending in the blank line; UnsafeRequest if any part could
    change how the upstream frames the request (see :func:`checked_head`)."""
    return checked_head(method, target, host, headers) + framing(method, length)


def framing(method: str, length: int) -> bytes:
    """The end of a request head: its Content-Length (when it has a body or should announce an
    empty one) and the blank line."""
    if length or method in ("POST", "PUT", "PATCH"):
        return b"content-length: %d\r\n\r\n" % length
    return b"\r\n"


def checked_head(method: str, target: str, host: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line, host and ``headers``, each line ending in CRLF (no framing, no blank
    line: :func:`framing` ends it); UnsafeRequest if any part could change how the upstream
    frames the request (CR, LF, NUL, other controls, spaces in the target).

    Every part is checked before it is sent, so no caller's bug or client's bytes can make one
    request into two: the method and header names are tokens, the target and host visible ASCII,
    header values free of control bytes but HTAB. Values are written as Latin-1 (the bytes the
    client sent, obs-text included). The values are checked once, on the whole head: its only CR
    and LF are the line ends and no other control byte is in it (a C pass over the bytes; a
    regex, or even ``str.isprintable``, per header cost more than the rest of the client's work).
    The same inputs give the same bytes, so a caller may keep the result (proxy/upstream/lean.py).
    """
    if method not in _METHODS and _TOKEN.fullmatch(method) is None:
        raise UnsafeRequest(f"invalid method {method[:32]!r}")
    if not (target.startswith("/") and target.isascii() and target.isprintable()) or (
        " " in target
    ):
        raise UnsafeRequest("the request target has characters the proxy does not forward")
    if not (host.isascii() and host.isprintable()) or " " in host:
        raise UnsafeRequest("invalid upstream host")
    lines = [f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"]
    checked = _CHECKED_NAMES
    for name, value in headers:
        if name not in checked and not _name_ok(name):  # (_name_ok's fast path inline)
            raise UnsafeRequest(f"invalid header name {name[:64]!r}")
        lines.append(f"{name}: {value}\r\n")
    try:
        head = "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise UnsafeRequest("a header value is not Latin-1 text") from None
    line_ends = len(lines) + 1  # the first piece holds two lines
    if head.translate(None, _HEAD_BYTES) or not (
        head.count(b"\n") == line_ends and head.count(b"\r") == line_ends
    ):
        raise _control_in(lines)
    return head


#: The bytes a request head may hold: HTAB, CR and LF (where it ends a line), visible ASCII, SP
#: and obs-text; everything else is a control byte (``bytes.translate`` deletes these).
_HEAD_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])


def _control_in(lines: list[str]) -> UnsafeRequest:
    """The refusal naming the header whose value has a control byte (request_head's check)."""
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        if not _value_ok(value[:-2]):
            return UnsafeRequest(f"header {name} has a control character")
    return UnsafeRequest("the request head has a control character")  # (the checks above agree)
