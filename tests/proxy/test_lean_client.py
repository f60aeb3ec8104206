"""The lean HTTP/1.1 upstream client against real sockets: a scripted server on 127.0.0.1.

Each test's server answers with raw bytes chosen by the test (content length, chunked, closed by
the server, hanging), so the client's reuse and discard rules and its error mapping are checked
on the wire, not against mocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from cli.server import free_port
from proxy.config import UpstreamConfig
from proxy.errors import UpstreamTimeout, UpstreamUnavailable
from proxy.upstream import build_upstream
from proxy.upstream.http import HttpUpstream
from proxy.upstream.lean import _HEADS_KEPT, LeanHttpUpstream
from proxy.upstream.wire import UnsafeRequest, request_head

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # -> keep the connection open


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


@asynccontextmanager
async def scripted(answer: Answer) -> AsyncIterator[Server]:
    """A server that reads each request (head and content-length body) and lets ``answer`` reply."""
    server_state = Server("")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                server_state.requests.append(request)
                if not await answer(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test is over (a handler must end quietly)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server_state.url = f"http://127.0.0.1:{port}/v1"
    async with server:
        yield server_state
        server.close()


def client(url: str, **fields: object) -> LeanHttpUpstream:
    return LeanHttpUpstream("up", UpstreamConfig.model_validate({"base_url": url, **fields}))


async def test_http_urls_get_the_lean_client_and_https_keeps_aiohttp():
    plain = build_upstream("a", UpstreamConfig(base_url="http://h:1/v1"))
    assert isinstance(plain, LeanHttpUpstream)
    assert isinstance(build_upstream("b", UpstreamConfig(base_url="https://h/v1")), HttpUpstream)


async def test_keep_alive_reuses_one_connection_and_writes_a_proper_request() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b'{"n": %d}' % len(request)))
        return True

    async with scripted(answer) as server:
        upstream = client(server.url, api_key=SecretStr("sk-up"))
        for _ in range(5):
            response = await upstream.send(
                "POST", "/chat/completions", b'{"model": "m"}',
                {"content-type": "application/json", "authorization": "Bearer user",
                 "host": "evil", "x-keep": "yes"}, 5.0,
            )  # fmt: skip
            assert response.status == 200
            assert response.content_type == "application/json"
            assert response.body.startswith(b'{"n": ')
        await upstream.aclose()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"host: {server.url.split('/')[2]}".encode() in lines
    assert b"host: evil" not in lines and b"authorization: Bearer user" not in lines
    assert b"authorization: Bearer sk-up" in lines and b"x-keep: yes" in lines
    assert b"content-length: 14" in lines and body == b'{"model": "m"}'


async def test_kept_request_heads_are_the_bytes_a_new_one_would_be() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(b"{}"))
        return True

    headers = {"content-type": "application/json", "x-a": "1"}
    async with scripted(answer) as server:
        upstream = client(server.url, api_key=SecretStr("sk-up"))
        bodies = [b"{}", b'{"model": "m"}', b"", b"{}"]
        for body in bodies:  # one method, path and headers: the head is kept after the first
            await upstream.send("POST", "/chat/completions", body, headers, 5.0)
        await upstream.send("GET", "/models", b"", headers, 5.0)
        await upstream.send("POST", "/chat/completions", b"{}", {**headers, "x-a": "2"}, 5.0)
        for _ in range(2):  # a refused head is never kept: refused again, before any write
            with pytest.raises(UnsafeRequest):
                await upstream.send("POST", "/chat/completions", b"{}", {"x-a": "a\r\nb"}, 5.0)
        for i in range(_HEADS_KEPT + 10):  # a header unique per request: the cache stays bounded
            upstream._request("POST", "/chat/completions", {"x-request-id": str(i)}, 2)
        assert len(upstream._heads) <= _HEADS_KEPT
        await upstream.aclose()
    host = server.url.split("/")[2]
    expected = [
        request_head("POST", "/v1/chat/completions", host,
                     [*headers.items(), ("authorization", "Bearer sk-up")], len(body)) + body
        for body in bodies
    ] + [
        request_head("GET", "/v1/models", host,
                     [*headers.items(), ("authorization", "Bearer sk-up")], 0),
        request_head("POST", "/v1/chat/completions", host,
                     [("content-type", "application/json"), ("x-a", "2"),
                      ("authorization", "Bearer sk-up")], 2) + b"{}",
    ]  # fmt: skip
    assert server.requests == expected


async def test_chunked_body_is_joined_and_the_connection_kept():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b'{"a": ', b"1", b"}"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    async with scripted(answer) as server:
        upstream = client(server.url)
        for _ in range(2):
            response = await upstream.send("GET", "/models", b"", {}, 5.0)
            assert (response.status, response.body) == (200, b'{"a": 1}')
            assert response.content_type == "application/json"  # the default when none is sent
        await upstream.aclose()
    assert server.connections == 1


async def test_connection_close_and_close_delimited_bodies_open_a_new_connection():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) % 2:  # the 1st and 3rd
            writer.write(ok(b"{}", b"connection: close\r\n"))
        else:  # no length, no chunking: the body ends when the server closes
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + b"x" * 5000)
        await writer.drain()
        return False

    async with scripted(answer) as server:
        upstream = client(server.url)
        assert (await upstream.send("GET", "/a", b"", {}, 5.0)).body == b"{}"
        assert (await upstream.send("GET", "/b", b"", {}, 5.0)).body == b"x" * 5000
        assert (await upstream.send("GET", "/c", b"", {}, 5.0)).body == b"{}"
        await upstream.aclose()
    assert server.connections == 3


async def test_server_closing_mid_body_is_unavailable_and_the_next_call_recovers() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            await writer.drain()
            return False
        writer.write(ok(b"{}"))
        return True

    async with scripted(answer) as server:
        upstream = client(server.url)
        with pytest.raises(UpstreamUnavailable):
            await upstream.send("POST", "/x", b"{}", {}, 5.0)
        assert (await upstream.send("POST", "/x", b"{}", {}, 5.0)).body == b"{}"
        await upstream.aclose()
    assert server.connections == 2


async def test_a_broken_answer_is_unavailable():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        return True

    async with scripted(answer) as server:
        upstream = client(server.url)
        with pytest.raises(UpstreamUnavailable, match="broken"):
            await upstream.send("GET", "/x", b"", {}, 5.0)
        await upstream.aclose()


async def test_a_hanging_server_times_out_and_its_connection_is_dropped() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/slow-body" in request:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await asyncio.sleep(30)
        return False

    async with scripted(answer) as server:
        upstream = client(server.url)
        loop = asyncio.get_running_loop()
        for path in ("/hang", "/slow-body"):
            started = loop.time()
            with pytest.raises(UpstreamTimeout):
                await upstream.send("POST", path, b"{}", {}, 0.2)
            assert 0.15 < loop.time() - started < 2.0
        pool = upstream._served
        assert pool is not None and pool.open_count == 0 and pool.idle_count == 0
        await upstream.aclose()


async def test_one_kept_connection_keeps_each_requests_own_deadline() -> None:
    """The connection's one timeout timer, moved lazily (wire.Connection.start): a short deadline
    after a long one still fires on time, and a long one after a short one does not fire early."""

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/hang" in request:
            await asyncio.sleep(30)
        elif b"/slow" in request:
            await asyncio.sleep(0.6)
        writer.write(ok(b"{}"))
        return True

    async with scripted(answer) as server:
        upstream = client(server.url)
        loop = asyncio.get_running_loop()
        assert (await upstream.send("POST", "/fast", b"{}", {}, 30.0)).status == 200
        started = loop.time()
        with pytest.raises(UpstreamTimeout):  # armed for 30 s a request ago: 0.3 s now
            await upstream.send("POST", "/hang", b"{}", {}, 0.3)
        assert 0.25 < loop.time() - started < 2.0
        assert (await upstream.send("POST", "/fast", b"{}", {}, 0.2)).status == 200
        # the timer of the 0.2 s request is still pending: it must sleep on, not time this out
        assert (await upstream.send("POST", "/slow", b"{}", {}, 5.0)).status == 200
        assert server.connections == 2  # the timed-out connection was dropped, the next kept
        await upstream.aclose()


async def test_connection_refused_is_unavailable() -> None:
    upstream = client(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(UpstreamUnavailable, match="unreachable"):
        await upstream.send("POST", "/x", b"{}", {}, 2.0)
    with pytest.raises(UpstreamUnavailable):
        async with upstream.stream("/x", b"{}", {}, 2.0):
            pass
    assert await upstream.ready() is not None
    await upstream.aclose()


async def test_stream_chunks_arrive_as_sent_and_a_finished_stream_keeps_the_connection() -> None:
    go_on = asyncio.Event()

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        go_on.clear()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        writer.write(b"%x\r\n%s\r\n" % (len(b"data: 1\n\n"), b"data: 1\n\n"))
        await writer.drain()
        await go_on.wait()  # the second event only after the client saw the first
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(b"data: 2\n\n"), b"data: 2\n\n"))
        return True

    async with scripted(answer) as server:
        upstream = client(server.url)
        for _ in range(2):
            seen = []
            async with upstream.stream("/chat/completions", b"{}", {}, 5.0) as answer_:
                assert (answer_.status, answer_.content_type) == (200, "text/event-stream")
                async for chunk in answer_.chunks():
                    seen.append(chunk)
                    go_on.set()
            assert seen == [b"data: 1\n\n", b"data: 2\n\n"]
        await upstream.aclose()
    assert server.connections == 1


async def test_an_abandoned_stream_closes_its_connection():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)
        return False

    async with scripted(answer) as server:
        upstream = client(server.url)
        for _ in range(2):
            async with upstream.stream("/x", b"{}", {}, 5.0) as answer_:
                async for chunk in answer_.chunks():
                    assert chunk == b"hello"
                    break
        pool = upstream._served
        assert pool is not None and pool.open_count == 0
        await upstream.aclose()
    assert server.connections == 2


async def test_max_connections_bounds_the_pool_and_waiters_get_a_connection():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.02)
        writer.write(ok(b"{}"))
        return True

    async with scripted(answer) as server:
        upstream = client(server.url, max_connections=2)
        responses = await asyncio.gather(
            *(upstream.send("POST", "/x", b"{}", {}, 5.0) for _ in range(8))
        )
        assert all(r.body == b"{}" for r in responses)
        await upstream.aclose()
    assert server.connections == 2


def test_the_same_wire_behaviour_on_uvloop():
    """The proxy serves on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    for scenario in (
        test_keep_alive_reuses_one_connection_and_writes_a_proper_request,
        test_stream_chunks_arrive_as_sent_and_a_finished_stream_keeps_the_connection,
        test_a_hanging_server_times_out_and_its_connection_is_dropped,
        test_server_closing_mid_body_is_unavailable_and_the_next_call_recovers,
        test_connection_refused_is_unavailable,
    ):
        uvloop.run(scenario())
