"""request_head and upstream_target under arbitrary input: one request exactly as meant, or refused.

h11 is the reference: whatever ``request_head`` writes must parse as exactly one request whose
method, target and headers are the ones passed in, with nothing left over.
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.errors import BadRequest
from proxy.target import upstream_target
from proxy.upstream.wire import UnsafeRequest, request_head

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=0x17F), max_size=12)
tokenish = st.text(st.sampled_from("abcXYZ-_.!~ \r\n\x00:/\x7f\t"), min_size=0, max_size=8)


def parse_one(head: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    request = conn.next_event()
    assert isinstance(request, h11.Request)
    events = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
            break
        events.append(event)
    assert events == []  # no body, nothing else
    return request


@settings(max_examples=300, deadline=None)
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "DELETE"]), tokenish),
    target=st.one_of(st.just("/v1/files"), st.text(max_size=16).map(lambda t: "/" + t)),
    headers=st.lists(st.tuples(st.one_of(st.just("x-a"), tokenish), latin1), max_size=4),
)
def test_request_head_writes_one_request_or_refuses(method, target, headers):
    try:
        head = request_head(method, target, "up:80", headers, 0)
    except UnsafeRequest:
        return
    request = parse_one(head)
    assert request.method == method.encode()
    assert request.target == target.encode()
    sent = [(n.lower().encode(), v.encode("latin-1").strip(b" \t")) for n, v in headers]
    got = [(n, v) for n, v in request.headers if n not in (b"host", b"content-length")]
    assert got == [(n, v) for n, v in sent if n not in (b"host", b"content-length")]


@pytest.mark.parametrize("value", ["a\r\nx: y", "a\nb", "a\rb", "a\x00b", "a\x7f", "a\x1b"])
def test_request_head_refuses_control_bytes_in_values(value):
    with pytest.raises(UnsafeRequest):
        request_head("GET", "/v1/x", "up", [("x-a", value)], 0)


@pytest.mark.parametrize("target", ["/v1/a b", "/v1/a\r\nb", "/v1/\u20ac", "v1/a", "/v1/a\x00"])
def test_request_head_refuses_unsafe_targets(target):
    with pytest.raises(UnsafeRequest):
        request_head("GET", target, "up", [], 0)


@settings(max_examples=300, deadline=None)
@given(
    path=st.binary(max_size=24).map(lambda b: b"/v1/" + b),
    query=st.one_of(st.just(b""), st.binary(max_size=12)),
)
def test_upstream_target_forwards_only_what_h11_reads_back_unchanged(path, query):
    try:
        target = upstream_target(path, query)
    except BadRequest as exc:
        assert exc.status == 400 and exc.param == "path"
        return
    assert target == (path[3:] + (b"?" + query if query else b"")).decode("ascii")
    request = parse_one(request_head("GET", "/v1" + target, "up", [], 0))
    assert request.target == b"/v1" + target.encode()
    assert b"%2f" not in target.lower().encode() and b"/../" not in target.encode() + b"/"
