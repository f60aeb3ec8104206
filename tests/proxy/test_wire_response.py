"""The lean client's answer parser against h11, on generated answers split at arbitrary points.

Property: whatever the parser accepts, h11 (the reference) accepts too, with the same status,
headers and body; what h11 refuses, the parser refuses. The parser may refuse more than h11
(documented in proxy/upstream/wire.py: obs-fold, bare LF, duplicate Content-Length, CL with TE,
bytes after the answer); answers built without any defect must be accepted.

The Connection is driven through its asyncio.Protocol methods with an in-memory transport: a
hypothesis example per socket would be too slow, and the protocol methods are exactly what the
event loop calls (tests/proxy/test_lean_client.py covers the same client on real sockets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.upstream.wire import Connection, ConnectionPool, request_head

REQUEST = request_head("GET", "/v1/x", "up", [], 0)


class MemoryTransport:
    """What Connection uses of a transport, in memory."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.write(part)

    def abort(self) -> None:
        self.closed = True

    close = abort

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@dataclass
class MemoryPool:
    loop: asyncio.AbstractEventLoop
    max_head_bytes: int = 4096
    max_body_bytes: int = 4096
    lost_count: int = 0

    def lost(self, conn: Connection) -> None:
        self.lost_count += 1


@dataclass
class Outcome:
    kind: str  # "ok", "refused", "incomplete"
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def ours(loop: asyncio.AbstractEventLoop, pieces: list[bytes], close: bool) -> Outcome:
    pool = MemoryPool(loop)
    conn = Connection(cast(ConnectionPool, pool))
    conn.connection_made(cast(asyncio.Transport, MemoryTransport()))
    conn.start(REQUEST, b"", streaming=False, head=False, timeout_s=1000)
    for piece in pieces:
        if conn.transport is None or conn.transport.is_closing():
            break
        conn.data_received(piece)
    if close and conn.transport is not None:
        conn.connection_lost(None)
    conn.close()
    if conn._exc is not None:
        return Outcome("refused")
    if not conn._complete or not conn._headers_done:
        return Outcome("incomplete")
    headers = [(n.lower(), v.strip(b" \t")) for n, v in conn.headers]
    return Outcome("ok", conn.status, headers, conn.body())


def reference(data: bytes, close: bool) -> Outcome:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/v1/x", headers=[("host", "up")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    if close:
        client.receive_data(b"")
    response: h11.Response | None = None
    body = bytearray()
    try:
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return Outcome("incomplete")
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
    except h11.RemoteProtocolError:
        return Outcome("refused")
    assert response is not None
    if client.trailing_data[0]:  # bytes after the answer: a second answer, or garbage
        return Outcome("refused")
    return Outcome("ok", response.status_code, list(response.headers), bytes(body))


# -- generated answers --------------------------------------------------------------------------


@dataclass
class Built:
    data: bytes
    close: bool
    defect: str | None  # the deliberate defect put in, if any


def chunked(body: bytes, sizes: list[int], ext: bool) -> bytes:
    out, i = [], 0
    for size in sizes:
        part = body[i : i + size]
        if not part:
            break
        out.append(b"%x%s\r\n%s\r\n" % (len(part), b";x=1" if ext else b"", part))
        i += len(part)
    if i < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - i, body[i:]))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


@dataclass
class Parts:
    """An answer being built: status line, header lines, body bytes as sent, and the rest."""

    version: bytes = b"HTTP/1.1"
    status: bytes = b"200"
    reason: bytes = b" OK"
    lines: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    payload: bytes = b""
    close: bool = False
    trailing: bytes = b""
    raw_line: bytes = b""  # a header line written as is
    bare_lf: bool = False

    def framing(self, name: bytes, value: bytes, payload: bytes) -> None:
        self.lines = [
            (n, v) for n, v in self.lines if n not in (b"content-length", b"transfer-encoding")
        ]
        self.lines.append((name, value))
        self.payload = payload


def _chunk_size(size: bytes, final: bool = True) -> Callable[[Parts], None]:
    def apply(p: Parts) -> None:
        p.framing(b"transfer-encoding", b"chunked", size + b"\r\nabc\r\n" + (b"0\r\n\r\n" * final))
        p.close = p.close or not final

    return apply


def _length_short(p: Parts) -> None:
    p.framing(b"content-length", b"%d" % (len(p.body) + 1), p.body)
    p.close = True


def _same_length_twice(p: Parts, extra: int) -> None:
    p.framing(b"content-length", b"%d" % len(p.body), p.body)
    p.lines.append((b"content-length", b"%d" % (len(p.body) + extra)))


def _length_and_chunked(p: Parts) -> None:
    p.framing(b"transfer-encoding", b"chunked", chunked(p.body, [], False))
    p.lines.append((b"content-length", b"%d" % len(p.body)))


def _chunked_twice(p: Parts) -> None:
    p.framing(b"transfer-encoding", b"chunked", chunked(p.body, [], False))
    p.lines.append((b"transfer-encoding", b"chunked"))


#: Each defect changes a built answer; the parser must refuse it or h11 must accept it.
DEFECTS: dict[str, Callable[[Parts], None]] = {
    "obs_fold": lambda p: setattr(p, "raw_line", b"x-fold: a\r\n  continued\r\n"),
    "bare_lf": lambda p: setattr(p, "bare_lf", True),
    "space_before_colon": lambda p: setattr(p, "raw_line", b"x-sp : a\r\n"),
    "ctl_in_value": lambda p: setattr(p, "raw_line", b"x-ctl: a\x01b\r\n"),
    "dup_length_equal": lambda p: _same_length_twice(p, 0),
    "dup_length_differ": lambda p: _same_length_twice(p, 1),
    "length_and_chunked": _length_and_chunked,
    "length_plus": lambda p: p.framing(b"content-length", b"+%d" % len(p.body), p.body),
    "length_short": _length_short,
    "length_long": lambda p: p.framing(b"content-length", b"%d" % len(p.body), p.body + b"xyz"),
    "bad_chunk_size": _chunk_size(b"zz"),
    "chunk_size_overflow": _chunk_size(b"f" * 20),
    "missing_final_chunk": _chunk_size(b"3", final=False),
    "te_gzip": lambda p: p.framing(
        b"transfer-encoding", b"gzip, chunked", chunked(p.body, [], False)
    ),
    "te_twice": _chunked_twice,
    "second_answer": lambda p: setattr(
        p, "trailing", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
    ),
    "garbage_after": lambda p: setattr(p, "trailing", b"\r\nX"),
    "huge_header": lambda p: p.lines.append((b"x-big", b"a" * 5000)),
    "huge_body": lambda p: p.framing(b"content-length", b"5000", b"b" * 5000),
    "bad_version_2": lambda p: setattr(p, "version", b"HTTP/2.0"),
    "bad_version_case": lambda p: setattr(p, "version", b"http/1.1"),
    "bad_status_short": lambda p: setattr(p, "status", b"20"),
    "bad_status_long": lambda p: setattr(p, "status", b"2000"),
    "bad_status_alpha": lambda p: setattr(p, "status", b"abc"),
    "no_reason_space": lambda p: setattr(p, "reason", b""),
}


@st.composite
def answers(draw: st.DrawFn) -> Built:
    """A well-formed answer (length, chunked or close framing), perhaps with one defect."""
    p = Parts(status=b"%d" % draw(st.sampled_from([200, 201, 404, 429, 500, 503])))
    p.body = draw(st.binary(max_size=64))
    p.lines = draw(
        st.lists(
            st.tuples(
                st.sampled_from([b"content-type", b"x-request-id", b"retry-after", b"x-a"]),
                st.text("abcXYZ019 /;=-", max_size=10).map(lambda t: t.strip().encode()),
            ),
            max_size=4,
        )
    )
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    p.close = framing == "close" or draw(st.booleans())
    if framing == "length":
        p.framing(b"content-length", b"%d" % len(p.body), p.body)
    elif framing == "chunked":
        sizes = draw(st.lists(st.integers(1, 16), max_size=5))
        p.framing(b"transfer-encoding", b"chunked", chunked(p.body, sizes, draw(st.booleans())))
    else:
        p.payload = p.body
    defect = draw(st.sampled_from([None] * 8 + sorted(DEFECTS)))  # each defect ~3 % of examples
    if defect is not None:
        DEFECTS[defect](p)
    head = p.version + b" " + p.status + p.reason + b"\r\n" + p.raw_line
    head += b"".join(name + b": " + value + b"\r\n" for name, value in p.lines) + b"\r\n"
    if p.bare_lf:
        head = head.replace(b"\r\n", b"\n")
    if defect is None and draw(st.booleans()):
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    return Built(head + p.payload + p.trailing, p.close, defect)


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    pieces, last = [], 0
    for cut in [*cuts, len(data)]:
        if cut > last:
            pieces.append(data[last:cut])
            last = cut
    return pieces


def check(loop: asyncio.AbstractEventLoop, built: Built, pieces: list[bytes]) -> None:
    mine = ours(loop, pieces, built.close)
    ref = reference(built.data, built.close)
    if mine.kind == "ok":
        assert ref.kind == "ok", (built, mine)
        assert (mine.status, mine.headers, mine.body) == (ref.status, ref.headers, ref.body)
    if ref.kind == "refused":
        assert mine.kind == "refused", (built, ref)
    if not built.defect:
        assert mine.kind == ref.kind == "ok", (built, mine, ref)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parser_agrees_with_h11_at_any_split(loop: asyncio.AbstractEventLoop, data: Any) -> None:
    built = data.draw(answers())
    check(loop, built, data.draw(split(built.data)))


OK = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("obs-fold", OK + b"x-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n"),
        ("bare LF", b"HTTP/1.1 200 OK\ncontent-length: 0\n\n"),
        ("equal duplicate length", OK + b"content-length: 1\r\ncontent-length: 1\r\n\r\na"),
        ("length list", OK + b"content-length: 1, 1\r\n\r\na"),
        ("length and chunked", OK + b"content-length: 1\r\ntransfer-encoding: chunked\r\n\r\n"
         b"1\r\na\r\n0\r\n\r\n"),
        ("two answers in one read", OK + b"content-length: 1\r\n\r\na" + OK
         + b"content-length: 0\r\n\r\n"),
        ("garbage after", OK + b"content-length: 1\r\n\r\naX"),
        ("bad chunk size", OK + b"transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        ("negative chunk size", OK + b"transfer-encoding: chunked\r\n\r\n-1\r\na\r\n0\r\n\r\n"),
        ("gzip transfer coding", OK + b"transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("head over the limit", OK + b"x-big: " + b"a" * 5000 + b"\r\n\r\n"),
        ("body over the limit", OK + b"content-length: 5000\r\n\r\n" + b"b" * 5000),
        ("control byte", OK + b"x-a: a\x00b\r\ncontent-length: 0\r\n\r\n"),
        ("space before colon", OK + b"x-a : b\r\ncontent-length: 0\r\n\r\n"),
        ("HTTP/2 status line", b"HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n"),
    ],
)  # fmt: skip
def test_each_documented_refusal(loop: asyncio.AbstractEventLoop, name: str, answer: bytes):
    assert ours(loop, [answer], close=False).kind == "refused", name
    assert ours(loop, [bytes([b]) for b in answer], close=False).kind == "refused", name


def test_interim_answer_then_the_real_one(loop: asyncio.AbstractEventLoop) -> None:
    answer = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK + b"x-request-id: r1\r\n"
    answer += b"content-length: 2\r\n\r\nhi"
    got = ours(loop, [answer], close=False)
    assert (got.kind, got.status, got.body) == ("ok", 200, b"hi")
    assert got.headers == [(b"x-request-id", b"r1"), (b"content-length", b"2")]
