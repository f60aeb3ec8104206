"""uvicorn's httptools protocol with the limits of proxy.edge and coalesced writes (the class).

proxy/http_protocol.py says what it refuses and why, and builds one subclass per server with
its ``limits`` and ``idle`` bookkeeping; this module is imported only when httptools is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from proxy.config import EdgeSettings
from proxy.errors import BadRequest, HeadersTooLarge, ProxyError, RequestTimeout, Unavailable
from proxy.http_protocol import HeadWithBody, refusal

__all__ = ["HardenedHttpToolsProtocol"]

log = logging.getLogger("proxy.http_protocol")


class InvalidHttp(BadRequest):
    code = "invalid_http_request"


#: Header names whose value on_header reads.
_VALUE_READ = frozenset({b"expect", b"transfer-encoding"})


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request over a limit."""


class HardenedHttpToolsProtocol(HttpToolsProtocol):
    """One client connection; ``limits`` and ``idle`` are set on the per-server subclass."""

    limits: ClassVar[EdgeSettings]
    #: ``limits.max_head_bytes`` and ``limits.max_headers``, read for every header
    _max_head_bytes: ClassVar[int]
    _max_headers: ClassVar[int]
    #: connections with no request in progress, oldest first (shared by one server's ones)
    idle: ClassVar[OrderedDict[HardenedHttpToolsProtocol, None]]
    _writer: HeadWithBody | None = None
    _timer: asyncio.TimerHandle | None = None
    _deadline = 0.0  # loop time by which the head or body must be complete
    _waiting_for: str | None = None  # "head", "body", "idle" (keep-alive) or None (no deadline)
    _refused: ProxyError | None = None
    _head_bytes = 0  # bytes received while reading a head (a bound on what llhttp buffers)
    _parsed = 0  # bytes of the current head that llhttp handed over (target and headers)
    _in_head = False  # between on_message_begin and on_headers_complete
    _in_body = False

    # -- connections ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            if self.idle:
                oldest, _ = self.idle.popitem(last=False)
                oldest.transport.close()  # its connection_lost leaves the set
            else:
                self._refuse(Unavailable("too many open connections, retry later"))
                return
        self.idle[self] = None
        self._arm(self.limits.head_timeout_seconds, "head")

    def connection_lost(self, exc: Exception | None) -> None:
        self.idle.pop(self, None)
        self._waiting_for = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        if self._in_body:  # answered before its body was read (a 413, say): the rest of the
            self.idle.pop(self, None)  # body would be read as the next request, so close
            self._waiting_for = None
            self.server_state.total_requests += 1
            self.transport.close()
            return
        # uvicorn's on_response_complete inline (a super() call per request showed in profiles)
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:  # waits for its next request, at most uvicorn's timeout_keep_alive (not with
            # uvicorn's timer: one created and cancelled per request; the lazy one of _arm)
            self._arm(self.timeout_keep_alive, "idle")
            self.idle[self] = None

    # -- parsing, with limits --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._waiting_for == "idle":  # bytes of the next request: its head has a deadline
            self._waiting_for = None
        if not self._in_body:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            refused = self._refused or InvalidHttp(f"invalid HTTP request: {exc}")
            log.info("refused a request from %s: %s", self.client, refused.message)
            self._refuse(refused)
            return
        # The head and body deadlines are armed here, after the parser has had these bytes,
        # and only for a request still incomplete: most requests arrive whole in one read and
        # then need no deadline at all (arming one per callback cost two clock reads a request).
        if self._in_body:
            if self._waiting_for != "body":
                self._arm(self.limits.body_timeout_seconds, "body")
        elif self._in_head:
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(self._too_large())
            elif self._waiting_for != "head":  # (a connection's first head: armed at connect)
                self._arm(self.limits.head_timeout_seconds, "head")
        elif self._waiting_for is None and (self.cycle is None or self.cycle.response_complete):
            self._arm(self.timeout_keep_alive, "idle")  # bytes that began no request

    def _too_large(self) -> HeadersTooLarge:
        return HeadersTooLarge(
            f"request head larger than {self.limits.max_head_bytes} bytes "
            f"or with more than {self.limits.max_headers} headers"
        )

    def _stop(self) -> None:
        self._refused = self._too_large()
        raise _Refused

    def on_message_begin(self) -> None:
        self.idle.pop(self, None)
        self._in_head = True
        self._parsed = 0
        # uvicorn's on_message_begin inline
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }

    # on_url and on_header do uvicorn's work inline (a super() call per header showed in
    # profiles); the digest test in tests/proxy/test_http_protocol.py watches the originals

    def on_url(self, url: bytes) -> None:
        self._parsed += len(url)
        if self._parsed > self.limits.max_head_bytes:
            self._stop()
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers  # this request's (on_message_begin): its length is the count
        self._parsed = parsed = self._parsed + len(name) + len(value) + 4  # ": " and CRLF
        if parsed > self._max_head_bytes or len(headers) >= self._max_headers:
            self._stop()
        name = name.lower()
        if name in _VALUE_READ:  # the common header: one set lookup, not two compares
            if name == b"expect":
                if value.lower() == b"100-continue":
                    self.expect_100_continue = True
            elif value.lower() != b"chunked":  # transfer-encoding
                # llhttp reads other codings as no body at all; h11 and RFC 9112 refuse them
                self._refused = InvalidHttp("only 'Transfer-Encoding: chunked' is accepted")
                raise _Refused
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.transport is not self.transport:
            return  # an upgrade, or a cycle that is not ours to change
        writer = self._writer
        if writer is None or writer._transport is not self.transport:
            writer = self._writer = HeadWithBody(self.transport, self.loop)
        writer.hold_next()
        cycle.transport = writer  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._in_body = False
        self._head_bytes = 0
        self._waiting_for = None  # no deadline (the timer, if any, finds nothing to do)
        # uvicorn's on_message_complete inline
        if (
            self.parser.should_upgrade() and self._should_upgrade()
        ) or self.cycle.response_complete:
            return
        self.cycle.more_body = False
        self.cycle.message_event.set()

    def send_400_response(self, msg: str) -> None:
        self._refuse(InvalidHttp(f"invalid HTTP request: {msg}"))

    # -- timers and refusals ----------------------------------------------------------------

    def _arm(self, delay: float, what: str) -> None:
        """The head or body must be complete within ``delay`` (or, "idle", the next one begin).

        One timer per connection, moved lazily: re-arming only sets the deadline, and the
        timer, when it fires early, sleeps again for what is left. A timer created and
        cancelled twice per request cost more than the rest of this class.
        """
        self._deadline = deadline = self.loop.time() + delay
        self._waiting_for = what
        timer = self._timer
        if timer is not None and timer.when() > deadline:  # set for a later deadline
            timer.cancel()
            timer = None
        if timer is None:
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    def _disarm(self) -> None:
        self._waiting_for = None  # the timer, if any, finds nothing to do and stops

    def _check_deadline(self) -> None:
        self._timer = None
        what = self._waiting_for
        if what is None:
            return
        left = self._deadline - self.loop.time()
        if left > 0:
            self._timer = self.loop.call_later(left, self._check_deadline)
            return
        if what == "idle":  # the keep-alive wait is over: close, as uvicorn's own timer does
            self._waiting_for = None
            self.idle.pop(self, None)
            if not self.transport.is_closing():
                self.transport.close()
            return
        seconds = (
            self.limits.head_timeout_seconds if what == "head" else self.limits.body_timeout_seconds
        )
        self._refuse(RequestTimeout(f"request {what} not received within {seconds:g} s"))

    def _refuse(self, exc: ProxyError) -> None:
        """Answer ``exc`` (unless a response has begun) and close the connection."""
        self.idle.pop(self, None)
        self._disarm()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            started = cycle.response_started
            cycle.disconnected = True  # the app's later writes go nowhere
            cycle.message_event.set()  # and a pending receive() sees the disconnect
            if started:
                transport.close()
                return
        transport.write(refusal(exc))
        transport.close()
