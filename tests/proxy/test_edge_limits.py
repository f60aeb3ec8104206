"""Server-side limits of `tunegate serve`: head size and count, slow-loris heads and bodies, idle
connections by the thousand, lying Content-Length, chunked bodies, body limits on every route,
and the upstream answer's size limit. Each refusal is OpenAI-shaped and nothing reaches the
upstream that should not.

The proxy runs with short timeouts and small limits (``EDGE`` below) so each case takes about a
second; the defaults are the same code with larger numbers.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.proxy.edge import Served, edge_config, exchange, raw_request, serve_edge
from tests.servers.recording import RecordingServer, recording_server

EDGE = {
    "max_head_bytes": 8192,
    "max_headers": 50,
    "head_timeout_seconds": 1.0,
    "body_timeout_seconds": 1.0,
    "keepalive_timeout_seconds": 1.0,
    "max_connections": 64,
    "max_small_body_bytes": 4096,
}
ADMIN_TOKEN = "edge-admin-token"


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingServer]:
    with recording_server() as server:
        yield server


@pytest.fixture(scope="module")
def edge(
    upstream: RecordingServer, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    config = edge_config(upstream, redis_server.url, edge=EDGE, max_body_bytes=65536)
    config["upstreams"]["rec"]["max_response_body_bytes"] = 4096
    env = {"TUNEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    with serve_edge(config, tmp_path_factory.mktemp("edge-limits"), **env) as served:
        yield served


@pytest.fixture
def rec(upstream: RecordingServer) -> Iterator[RecordingServer]:
    upstream.reset()
    yield upstream
    upstream.reset()


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or ``timeout``); and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return bytes(data), time.monotonic() - started


def status_and_error(data: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    error: dict[str, Any] = orjson.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return status, error


def send_tolerant(sock: socket.socket, data: bytes) -> None:
    """Send as much as the server takes before it closes (it may refuse early)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def assert_still_serving(edge: Served, rec: RecordingServer) -> None:
    (answer,) = exchange(edge.port, raw_request("GET", "/v1/files/alive"))
    assert answer.status == 200 and answer.json()["target"] == "/v1/files/alive"


# -- heads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        [("x-big", "a" * 1024 * 1024)],  # one 1 MiB header
        [("x-many", str(i)) for i in range(10_000)],  # ten thousand headers
        [("x-h", "b" * 200) for _ in range(45)],  # under the count, over the size
    ],
    ids=["one-huge-header", "ten-thousand-headers", "many-medium-headers"],
)
def test_oversized_heads_get_431_and_are_not_forwarded(
    edge: Served, rec: RecordingServer, head: list[tuple[str, str]]
):
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        send_tolerant(sock, raw_request("GET", "/v1/files/big", headers=head))
        data, took = read_until_closed(sock, 5)
    status, error = status_and_error(data)
    assert status == 431 and error["code"] == "request_header_fields_too_large"
    assert took < 3
    assert rec.requests == []
    assert_still_serving(edge, rec)


def test_a_head_just_under_the_limits_is_forwarded(edge: Served, rec: RecordingServer):
    headers = [(f"x-h{i}", "c" * 100) for i in range(40)]
    (answer,) = exchange(edge.port, raw_request("GET", "/v1/files/ok", headers=headers))
    assert answer.status == 200
    (request,) = rec.wait_for(1)
    assert request.header(b"x-h39") == [b"c" * 100]


# -- slow clients ---------------------------------------------------------------------------------


def test_slow_loris_head_is_cut_off_with_408(edge: Served, rec: RecordingServer):
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(b"GET /v1/files/slow HTTP/1.1\r\nhost: edge\r\n")
        started = time.monotonic()
        closed = False
        for _ in range(40):  # a header byte every 0.1 s: never completes on its own
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            sock.settimeout(0.001)
            try:
                if sock.recv(65536, socket.MSG_PEEK):
                    break
            except (TimeoutError, BlockingIOError):
                pass
        data, _ = read_until_closed(sock, 3)
        took = time.monotonic() - started
    assert closed or status_and_error(data)[0] == 408
    assert took < 3, took
    assert rec.requests == []


def test_a_connection_that_never_sends_is_closed_after_the_head_timeout(edge: Served):
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        data, took = read_until_closed(sock, 5)
    assert 0.5 < took < 3
    status, error = status_and_error(data)
    assert status == 408 and error["code"] == "request_timeout"


@pytest.mark.parametrize("path", ["/v1/files/up", "/v1/chat/completions", "/v1/feedback"])
def test_slow_or_lying_body_is_cut_off_with_408(edge: Served, rec: RecordingServer, path: str):
    """Content-Length promises 100 bytes; 10 arrive, then nothing."""
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(
            raw_request("POST", path, headers=[("content-length", "100")], body=b'{"model": "')
        )
        data, took = read_until_closed(sock, 5)
    assert took < 3
    status, error = status_and_error(data)
    assert status == 408 and error["code"] == "request_timeout"
    assert rec.requests == []


def test_a_slow_head_after_a_kept_alive_request_is_cut_off_with_408(
    edge: Served, rec: RecordingServer
):
    """The next request's head has its own deadline (armed lazily, after the read that began it)."""
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(raw_request("GET", "/v1/files/first"))
        data = b""
        while b"/v1/files/first" not in data:  # the recording upstream echoes the target
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET /v1/files/second HTTP/1.1\r\nhost: x\r\n")  # and then nothing
        data, _ = read_until_closed(sock, 5)
        took = time.monotonic() - started
    assert 0.5 < took < 3
    status, error = status_and_error(data)
    assert status == 408 and error["code"] == "request_timeout"


def test_idle_keep_alive_connections_are_closed(edge: Served, rec: RecordingServer):
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        sock.sendall(raw_request("GET", "/v1/files/ka"))
        data, took = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 200") and 0.5 < took < 3


def test_thousands_of_idle_connections_do_not_lock_clients_out(edge: Served, rec: RecordingServer):
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", edge.port)))
        started = time.monotonic()
        (answer,) = exchange(edge.port, raw_request("GET", "/v1/files/after-idle"), timeout=5)
        assert answer.status == 200 and answer.json()["target"] == "/v1/files/after-idle"
        assert time.monotonic() - started < 2
    finally:
        for sock in idle:
            sock.close()


def test_with_no_idle_connection_to_close_a_new_one_gets_503(edge: Served, rec: RecordingServer):
    busy = []  # each has begun a request (half a head): none is idle, none can be closed
    try:
        for _ in range(int(EDGE["max_connections"]) + 4):
            sock = socket.create_connection(("127.0.0.1", edge.port))
            sock.sendall(b"GET /v1/files/busy HTTP/1.1\r\n")
            busy.append(sock)
        time.sleep(0.1)  # let the proxy read them (they are refused with 408 after 1 s)
        with socket.create_connection(("127.0.0.1", edge.port)) as sock:
            data, took = read_until_closed(sock, 3)
        status, error = status_and_error(data)
        assert status == 503 and error["code"] == "unavailable" and took < 0.9
    finally:
        for sock in busy:
            sock.close()
    assert_still_serving(edge, rec)


# -- framing --------------------------------------------------------------------------------------


def test_content_length_shorter_than_the_body_forwards_only_the_declared_bytes(
    edge: Served, rec: RecordingServer
):
    data = raw_request("POST", "/v1/files/short", headers=[("content-length", "2")], body=b"{}")
    answers = exchange(edge.port, data + b"GET /smuggled HTTP/1.1\r\n\r\n", responses=2)
    assert answers[0].status == 200
    assert [(r.target, r.body) for r in rec.requests] == [(b"/v1/files/short", b"{}")]
    assert b"smuggled" not in b"".join(rec.raw())


@pytest.mark.parametrize(
    "headers",
    [
        [("content-length", "2"), ("content-length", "2")],
        [("content-length", "2"), ("content-length", "3")],
        [("content-length", "2, 2")],
        [("content-length", "+2")],
        [("content-length", "-1")],
        [("content-length", "2"), ("transfer-encoding", "chunked")],
        [("transfer-encoding", "gzip")],
        [("transfer-encoding", "chunked, identity")],
    ],
)
def test_duplicate_or_conflicting_framing_is_refused(
    edge: Served, rec: RecordingServer, headers: list[tuple[str, str]]
):
    data = raw_request("POST", "/v1/files/dup", headers=headers, body=b"{}")
    answers = exchange(edge.port, data)
    assert len(answers) == 1 and answers[0].status == 400, answers
    assert answers[0].json()["error"]["type"] == "invalid_request_error"
    assert rec.requests == []


@pytest.mark.parametrize("path", ["/v1/files/chunked", "/v1/chat/completions"])
def test_chunked_request_bodies_reach_the_upstream_with_a_length(
    edge: Served, rec: RecordingServer, path: str
):
    body = b'{"model": "exp", "messages": [{"role": "user", "content": "hi there"}]}'
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    headers = [("transfer-encoding", "chunked"), ("content-type", "application/json")]
    data = raw_request("POST", path, headers=headers) + chunks + b"0\r\n\r\n"
    (answer,) = exchange(edge.port, data)
    assert answer.status == 200, answer.body
    received = rec.wait_for(2 if path == "/v1/chat/completions" else 1)  # (and its shadow copy)
    served = received[0]
    assert served.header(b"content-length") == [str(len(served.body)).encode()]
    assert served.header(b"transfer-encoding") == []
    assert orjson.loads(served.body)["messages"] == orjson.loads(body)["messages"]


def test_a_websocket_upgrade_is_answered_as_plain_http(edge: Served, rec: RecordingServer):
    headers = [("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-version", "13"),
               ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")]  # fmt: skip
    (answer,) = exchange(edge.port, raw_request("GET", "/v1/files/ws", headers=headers))
    assert answer.status == 200
    (request,) = rec.wait_for(1)
    assert request.header(b"upgrade") == [] and request.header(b"sec-websocket-key") != []


# -- body limits on every route -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "limit"),
    [
        ("POST", "/v1/feedback", 4096),
        ("PUT", "/admin/experiments/exp/state", 4096),
        ("POST", "/v1/chat/completions", 65536),
        ("POST", "/v1/files/big", 65536),
    ],
)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_every_route_refuses_a_body_over_its_limit_with_413(
    edge: Served, rec: RecordingServer, method: str, path: str, limit: int, framing: str
):
    big = 64 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", edge.port)) as sock:
        if framing == "length":  # only the head: the refusal must not wait for the body
            sock.sendall(raw_request(method, path, headers=[("content-length", str(big))]))
        else:
            sock.sendall(raw_request(method, path, headers=[("transfer-encoding", "chunked")]))
            piece = b"%x\r\n%s\r\n" % (1024, b"a" * 1024)
            send_tolerant(sock, piece * (limit // 1024 + 8))
        data, took = read_until_closed(sock, 5)
    status, error = status_and_error(data)
    assert status == 413 and error["code"] == "payload_too_large", error
    assert took < 3
    assert rec.requests == []


# -- answers from the upstream --------------------------------------------------------------------


def test_an_upstream_answer_over_its_size_limit_is_a_502(edge: Served, rec: RecordingServer):
    rec.pad = 8192
    (answer,) = exchange(edge.port, raw_request("GET", "/v1/files/huge-answer"))
    assert answer.status == 502
    assert answer.json()["error"]["code"] == "upstream_protocol_error"
    rec.pad = 0
    assert_still_serving(edge, rec)


def test_no_traceback_in_the_log_after_all_of_it(edge: Served):
    exchange(edge.port, raw_request("GET", "/v1/files/%E2%82%AC"))
    exchange(edge.port, raw_request("GET", b"/v1/\xe2\x82\xac"))
    output = edge.output()
    assert "Traceback" not in output, output[-4000:]
