"""Request smuggling via the passthrough: no client bytes reach the upstream as a second request.

`tunegate serve` runs in front of an upstream that records every byte it receives and parses them
with h11; each hostile target is checked for what the client got (an OpenAI-shaped 400, or its
own answer) and for exactly what the upstream saw (how many requests, which targets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.proxy.edge import Served, edge_config, exchange, raw_request, serve_edge
from tests.servers.recording import RecordingServer, recording_server


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingServer]:
    with recording_server() as server:
        yield server


@pytest.fixture(scope="module")
def edge(
    upstream: RecordingServer, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    config = edge_config(upstream, redis_server.url)
    with serve_edge(config, tmp_path_factory.mktemp("edge")) as served:
        yield served


@pytest.fixture
def rec(upstream: RecordingServer) -> Iterator[RecordingServer]:
    upstream.reset()
    yield upstream
    upstream.reset()


def openai_error(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers[b"content-type"].startswith(b"application/json")
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


ISSUE_SMUGGLE = "/v1/files/a%20HTTP/1.1%0D%0Ahost:%20x%0D%0A%0D%0AGET%20/smuggled?x="


@pytest.mark.parametrize(
    "target",
    [
        ISSUE_SMUGGLE,
        ISSUE_SMUGGLE.lower(),
        "/v1/files/a%0d%0aX-Injected:%201",
        "/v1/files/a%0Ab",
        "/v1/files/a%0Db",
        "/v1/files/a%00b",
        "/v1/files/a%7Fb",
        "/v1/files/a%1bb",
        "/v1/files/../../smuggled",
        "/v1/files/%2e%2e/%2E%2E/smuggled",
        "/v1/files/./a",
        "/v1/files/a/..",
        "/v1/files/a%2F..%2F..%2Fsmuggled",
        "/v1/files/a%2fb",
        "/v1/files/a%",
        "/v1/files/a%zz",
        "/%76%31/files/a",
    ],
)
def test_hostile_paths_are_refused_and_nothing_reaches_the_upstream(
    edge: Served, rec: RecordingServer, target: str
):
    answers = exchange(edge.port, raw_request("GET", target), responses=1)
    assert len(answers) == 1
    error = openai_error(answers[0], 400)
    assert error["type"] == "invalid_request_error" and error["param"] == "path"
    assert rec.requests == [] and b"smuggled" not in b"".join(rec.raw())
    # the proxy's next request is answered with its own answer
    (after,) = exchange(edge.port, raw_request("GET", "/v1/files/next"))
    assert after.status == 200 and after.json()["target"] == "/v1/files/next"
    assert [r.target for r in rec.requests] == [b"/v1/files/next"]


@pytest.mark.parametrize(
    ("target", "upstream_target"),
    [
        ("/v1/files/%E2%82%AC", b"/v1/files/%E2%82%AC"),  # non-ASCII stays percent-encoded
        ("/v1/files/a%20b", b"/v1/files/a%20b"),  # an encoded space is one path character
        ("/v1/files/a%3Fb?limit=2", b"/v1/files/a%3Fb?limit=2"),  # %3F is no query
        ("/v1/files/a%23b", b"/v1/files/a%23b"),
        ("/v1/files?purpose=a%0D%0Ab", b"/v1/files?purpose=a%0D%0Ab"),  # the query as sent
        ("/v1/files/file-abc_1.txt", b"/v1/files/file-abc_1.txt"),
        ("/v1/files/a..b/c.", b"/v1/files/a..b/c."),  # dots inside a segment are no traversal
    ],
)
def test_safe_paths_reach_the_upstream_byte_for_byte(
    edge: Served, rec: RecordingServer, target: str, upstream_target: bytes
):
    (answer,) = exchange(edge.port, raw_request("GET", target))
    assert answer.status == 200, answer.body
    (request,) = rec.wait_for(1)
    assert request.target == upstream_target and request.method == b"GET"
    assert request.header(b"authorization") == [b"Bearer proxy-upstream-key"]
    assert len(rec.requests) == 1


def test_issue_smuggle_on_keep_alive_cannot_poison_the_next_users_request(
    edge: Served, rec: RecordingServer
):
    """The attack from issue 12 followed by a victim on the same and on a new connection."""
    attack = raw_request("GET", ISSUE_SMUGGLE)
    victim = raw_request(
        "POST",
        "/v1/files/victim",
        headers=[("authorization", "Bearer victim-key"), ("content-type", "application/json")],
        body=b'{"prompt": "victim secret"}',
    )
    answers = exchange(edge.port, attack + victim, responses=2)
    assert [a.status for a in answers] == [400, 200]
    assert answers[1].json()["target"] == "/v1/files/victim"
    for _ in range(3):  # fresh connections: each gets its own answer
        (answer,) = exchange(edge.port, victim)
        assert answer.json()["target"] == "/v1/files/victim"
    targets = [r.target for r in rec.requests]
    assert targets == [b"/v1/files/victim"] * 4
    assert all(r.body == b'{"prompt": "victim secret"}' for r in rec.requests)


def test_raw_control_bytes_in_the_request_line_get_an_openai_shaped_400(
    edge: Served, rec: RecordingServer
):
    for target in (b"/v1/files/a\x00b", b"/v1/files/a\rb", b"/v1/files/a b c", b"/v1/\xe2\x82\xac"):
        answers = exchange(edge.port, raw_request("GET", target))
        assert len(answers) == 1, target
        openai_error(answers[0], 400)
    assert rec.requests == []


@pytest.mark.parametrize(
    "header",
    [
        ("x-evil", "a\x00b"),
        ("x-evil", "a\x01b"),
        ("x-evil", "a\x7fb"),
        ("x-evil", "a\rb"),
        ("x\x00evil", "a"),
        ("x evil", "a"),
        ("x-evil", "a\nGET /smuggled HTTP/1.1"),
        ("x-evil", "a\rGET /smuggled HTTP/1.1"),
    ],
)
def test_control_bytes_in_headers_never_reach_the_upstream(
    edge: Served, rec: RecordingServer, header: tuple[str, str]
):
    for path in ("/v1/files/h", "/v1/chat/completions"):
        body = b'{"model": "exp", "messages": [{"role": "user", "content": "hi"}]}'
        data = raw_request("POST", path, headers=[header], body=body)
        answers = exchange(edge.port, data)
        assert len(answers) == 1
        openai_error(answers[0], 400)
    assert rec.requests == [] and b"smuggled" not in b"".join(rec.raw())


def test_obs_text_header_values_are_forwarded_as_the_same_bytes(edge: Served, rec: RecordingServer):
    data = raw_request("GET", "/v1/files/h", headers=[("x-name", "caf\xe9\tok")])
    (answer,) = exchange(edge.port, data)
    assert answer.status == 200
    (request,) = rec.wait_for(1)
    assert request.header(b"x-name") == [b"caf\xe9\tok"]
