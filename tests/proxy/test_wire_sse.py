"""The SSE relay (proxy/streaming.py EventRelay) on generated event streams split at any points,
against the openai SDK's own SSE decoder (what the clients behind the proxy run).

Properties: the client gets every byte, in order; every piece sent before the end holds whole
events only (the SDK decodes the pieces one by one into the same events as the whole stream);
with consistent LF or CRLF line ends no event waits for a later chunk; and after a mid-stream
failure the client decodes the whole events sent so far and then one OpenAI-shaped error event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder

from proxy.errors import UpstreamReset
from proxy.streaming import EventRelay

text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=12)


@st.composite
def events(draw: st.DrawFn, ends: list[bytes]) -> bytes:
    """One SSE event: optional name, id and comment, one to three data lines, a blank line."""
    lines: list[bytes] = []
    if draw(st.booleans()):
        lines.append(b": keep-alive")
    if draw(st.booleans()):
        lines.append(b"event: " + draw(st.sampled_from([b"message", b"delta", b"error"])))
    for _ in range(draw(st.integers(1, 3))):
        lines.append(b"data: " + draw(text).encode())
    if draw(st.booleans()):
        lines.append(b"id: " + str(draw(st.integers(0, 99))).encode())
    out = b""
    for line in [*lines, b""]:
        out += line + draw(st.sampled_from(ends))
    return out


def stream(ends: list[bytes]) -> st.SearchStrategy[list[bytes]]:
    return st.lists(events(ends), min_size=1, max_size=6)


@st.composite
def pieces(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=8))))
    out, last = [], 0
    for cut in [*cuts, len(data)]:
        if cut > last:
            out.append(data[last:cut])
            last = cut
    return out


def decode(data: bytes) -> list[tuple[str | None, str]]:
    """Events as (name, data); ids are left out, as SSE carries the last id over to later events
    (a piece decoded alone would not know it)."""
    return [(e.event, e.data) for e in SSEDecoder().iter_bytes(iter([data]))]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def relay(
    loop: asyncio.AbstractEventLoop, chunks: list[bytes], *, fail_after: int | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """Messages the client got, and after each chunk how many body bytes it had."""
    sent: list[dict[str, Any]] = []
    seen: list[int] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        r = EventRelay(send)
        for i, chunk in enumerate(chunks):
            if fail_after is not None and i == fail_after:
                await r.fail(UpstreamReset("upstream died mid-stream"))
                return
            await r.forward(chunk)
            seen.append(sum(len(m["body"]) for m in sent))
        await r.finish()

    loop.run_until_complete(run())
    return sent, seen


@settings(max_examples=200, deadline=None)
@given(data=st.data(), ends=st.sampled_from([[b"\n"], [b"\r\n"], [b"\n", b"\r\n", b"\r"]]))
def test_relay_sends_every_byte_in_whole_events(loop, data, ends):
    whole = b"".join(data.draw(stream(ends)))
    chunks = data.draw(pieces(whole))
    sent, seen = relay(loop, chunks)
    assert b"".join(m["body"] for m in sent) == whole
    assert [m["more_body"] for m in sent][-1] is False and all(m["more_body"] for m in sent[:-1])
    by_piece = [ev for m in sent for ev in decode(m["body"])]
    assert by_piece == decode(whole)
    if len(ends) == 1:  # consistent line ends: each event goes out with the chunk that ends it
        sep = ends[0] * 2
        received = 0
        for chunk, had in zip(chunks, seen, strict=True):
            received += len(chunk)
            prefix = whole[:received]
            complete = prefix.rfind(sep) + len(sep) if sep in prefix else 0
            assert had == complete


@settings(max_examples=150, deadline=None)
@given(data=st.data(), ends=st.sampled_from([[b"\n"], [b"\r\n"]]))
def test_a_mid_stream_failure_ends_with_whole_events_and_one_error_event(loop, data, ends):
    whole = b"".join(data.draw(stream(ends)))
    chunks = data.draw(pieces(whole))
    fail_after = data.draw(st.integers(0, len(chunks)))
    sent, _ = relay(loop, chunks, fail_after=fail_after)
    got = decode(b"".join(m["body"] for m in sent))
    received = b"".join(chunks[:fail_after])
    sep = ends[0] * 2
    complete = received[: received.rfind(sep) + len(sep)] if sep in received else b""
    if fail_after == len(chunks):  # it failed after the end: finish() already sent everything
        assert got == decode(whole)
        return
    assert got[:-1] == decode(complete)
    error = orjson.loads(got[-1][1])["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "upstream_reset"
