"""Every failure is visible to the user who suffered it and recorded with its true cause.

Mid-stream death makes the ``openai`` SDK raise (sync and async); a shadow task that raises still
completes its pair; upstream response headers (Retry-After, x-request-id, rate limits) reach the
client; a request written onto a keep-alive connection the server is closing is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bench.servers.openai_double import OpenAIDouble, Reply
from cli.server import free_port, serve_in_thread
from proxy.config import MirrorSettings, PairLogSettings, UpstreamConfig
from proxy.extract import RequestFacts
from proxy.legs import ShadowLeg
from proxy.metrics import ProxyMetrics
from proxy.mirror import ShadowRunner
from proxy.pairlog import WRITE_PAIR, PairLogger
from proxy.pairs import PairDraft
from proxy.upstream.base import UpstreamResponse
from proxy.upstream.lean import LeanHttpUpstream
from tests.proxy.conftest import (
    Doubles,
    Proxy,
    build_settings,
    run_proxy,
    sdk,
    wait_for_pairs,
    wait_until,
)
from tests.proxy.test_lean_client import ok, scripted
from tests.servers.tcp_relay import TcpRelay
from tunegate import keys
from tunegate.outcomes import OUTCOME_FIELD
from tunegate.records import Arm, Endpoint, Pair, decode_pair, encode

MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


# -- mid-stream death -------------------------------------------------------------------------


def test_mid_stream_death_makes_the_sync_sdk_raise(proxy: Proxy, doubles: Doubles, redis_url: str):
    doubles.control.script(Reply(chunks=["one ", "two ", "three"], die_after=2))
    stream = sdk(proxy.base_url).chat.completions.create(
        model="exp-shadow", messages=MESSAGES, stream=True
    )
    pieces: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["one ", "two "]  # what arrived before the failure, and nothing made up
    assert "closed the connection" in raised.value.message
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.control is not None and pair.control.error == "reset"
    assert (
        proxy.metric(
            "tunegate_upstream_errors_total", experiment="exp-shadow", arm="control", reason="reset"
        )
        == 1
    )


async def test_mid_stream_death_makes_the_async_sdk_raise(proxy: Proxy, doubles: Doubles):
    doubles.control.script(Reply(chunks=["a ", "b ", "c"], die_after=1))
    async with openai.AsyncOpenAI(
        base_url=proxy.base_url, api_key="k", max_retries=0, timeout=10.0
    ) as client:
        stream = await client.chat.completions.create(
            model="exp-shadow", messages=MESSAGES, stream=True
        )
        pieces: list[str] = []
        with pytest.raises(openai.APIError):
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["a "]


def test_a_healthy_stream_is_relayed_whole(proxy: Proxy, doubles: Doubles):
    doubles.control.script(Reply(chunks=["x", "y", "z"]))
    stream = sdk(proxy.base_url).chat.completions.create(
        model="exp-shadow", messages=MESSAGES, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "xyz"


# -- a shadow task that raises ----------------------------------------------------------------


class _BuggyUpstream:
    """An upstream whose client has a bug: it raises something no seam translates."""

    name = "buggy"
    shadow_capacity = 4

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
        raise KeyError("a bug in the client")


async def test_a_shadow_task_that_raises_still_completes_its_pair(caplog):
    metrics = ProxyMetrics(CollectorRegistry())
    pairs: list[Pair] = []
    draft = PairDraft(
        pairs.append,
        pair_id="p1",
        experiment="exp",
        endpoint=Endpoint.CHAT,
        request=b'{"model": "exp"}',
        served_arm=Arm.CONTROL,
        facts=RequestFacts(),
    )
    leg = ShadowLeg(
        _BuggyUpstream(),  # type: ignore[arg-type]  # the Upstream protocol, minus stream/ready
        draft,
        metrics,
        path="/chat/completions",
        body=b"{}",
        headers={},
        model="cand",
        stream=False,
        timeout_s=5.0,
        max_bytes=1024,
    )
    caplog.set_level(logging.ERROR, logger="proxy.mirror")
    async with ShadowRunner(MirrorSettings(start_delay_ms=0), metrics, {}) as runner:
        assert runner.try_start(leg, capacity=4) is None
        draft.expect_shadow()
        draft.served_done(_served())
        assert runner.lane_inflight("buggy") == 1
    assert runner.lane_inflight("buggy") == 0
    [pair] = pairs
    assert pair.control is not None and pair.control.ok
    assert pair.candidate is not None and pair.candidate.error == "internal"
    assert pair.candidate.upstream == "buggy" and pair.candidate.model == "cand"
    sample = metrics.registry.get_sample_value(
        "tunegate_upstream_errors_total",
        {"experiment": "exp", "arm": "candidate", "reason": "internal"},
    )
    assert sample == 1
    assert "shadow call for exp failed unexpectedly" in caplog.text


def _served() -> Any:
    from proxy.legs import arm_result

    return arm_result("control", "m", stream=False, max_bytes=1024, status=200, body=b"{}")


# -- response headers -------------------------------------------------------------------------

RELAYED = [
    ("retry-after", "7"),
    ("x-request-id", "req-123"),
    ("x-ratelimit-remaining-requests", "9"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("status", [200, 429])
def test_upstream_headers_reach_the_client(
    proxy: Proxy, doubles: Doubles, status: int, stream: bool
):
    doubles.control.headers = list(RELAYED)
    doubles.control.script(Reply(status=status))
    response = httpx.post(
        f"{proxy.base_url}/chat/completions",
        json={"model": "exp-shadow", "messages": MESSAGES, "stream": stream},
        timeout=10.0,
    )
    assert response.status_code == status
    for name, value in RELAYED:
        assert response.headers.get_list(name) == [value]
    assert response.headers.get_list("content-length") in ([], [str(len(response.content))])
    assert len(response.headers.get_list("server")) <= 1  # the proxy's own, not the upstream's too
    assert response.headers["x-tunegate-pair-id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}),
        ("POST", "/chat/completions", {"model": "gpt-4o", "messages": MESSAGES, "stream": True}),
        ("GET", "/files/abc", None),
    ],
    ids=["whole", "stream", "get"],
)
def test_passthrough_relays_the_upstream_headers_too(
    redis_url: str, doubles: Doubles, method: str, path: str, body: object
):
    settings = build_settings(
        redis_url, doubles.urls,
        [{"name": "exp", "control": {"upstream": "control"},
          "candidate": {"upstream": "candidate"}}],
        passthrough_upstream="other",
    )  # fmt: skip
    doubles.other.headers = list(RELAYED)
    with run_proxy(settings) as proxy:
        response = httpx.request(method, f"{proxy.base_url}{path}", json=body, timeout=10.0)
    assert response.status_code == 200
    for name, value in RELAYED:
        assert response.headers.get_list(name) == [value]
    assert len(response.headers.get_list("server")) <= 1


def test_the_sdk_sees_retry_after_on_a_429(proxy: Proxy, doubles: Doubles):
    doubles.control.headers = list(RELAYED)
    doubles.control.script(Reply(status=429))
    with pytest.raises(openai.RateLimitError) as raised:
        sdk(proxy.base_url).chat.completions.create(model="exp-shadow", messages=MESSAGES)
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.response.headers["x-request-id"] == "req-123"


# -- keep-alive races -------------------------------------------------------------------------


async def test_a_reused_connection_closed_unanswered_is_retried_once_on_a_new_one():
    """The server takes the second request on a kept-alive connection and closes it unanswered
    (what a server closing idle connections does when the request crosses its close)."""
    served_on: dict[int, int] = {}

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        key = id(writer)
        served_on[key] = served_on.get(key, 0) + 1
        if served_on[key] == 2:
            return False  # close without a byte of answer
        writer.write(ok(b'{"n": 1}'))
        await writer.drain()
        return True

    async with scripted(answer) as server:
        upstream = LeanHttpUpstream("up", UpstreamConfig(base_url=server.url))
        first = await upstream.send("POST", "/x", b"{}", {}, 5.0)
        second = await upstream.send("POST", "/x", b"{}", {}, 5.0)
        await upstream.aclose()
    assert (first.status, second.status) == (200, 200)
    assert upstream.retries == 1
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_reused_connection_closed_after_part_of_an_answer_is_not_retried():
    from proxy.errors import UpstreamReset

    served_on: dict[int, int] = {}

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        key = id(writer)
        served_on[key] = served_on.get(key, 0) + 1
        if served_on[key] == 2:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-")  # the server did answer: no retry
            await writer.drain()
            return False
        writer.write(ok(b'{"n": 1}'))
        await writer.drain()
        return True

    async with scripted(answer) as server:
        upstream = LeanHttpUpstream("up", UpstreamConfig(base_url=server.url))
        await upstream.send("POST", "/x", b"{}", {}, 5.0)
        with pytest.raises(UpstreamReset):
            await upstream.send("POST", "/x", b"{}", {}, 5.0)
        await upstream.aclose()
    assert upstream.retries == 0 and len(server.requests) == 2


async def test_a_fresh_connection_closed_unanswered_is_not_retried():
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    async with scripted(answer) as server:
        upstream = LeanHttpUpstream("up", UpstreamConfig(base_url=server.url))
        from proxy.errors import UpstreamReset

        with pytest.raises(UpstreamReset):
            await upstream.send("POST", "/x", b"{}", {}, 5.0)
        await upstream.aclose()
    assert upstream.retries == 0 and len(server.requests) == 1


def test_keep_alive_drill_against_an_upstream_that_closes_idle_connections_at_1s(
    redis_url: str,
):
    """uvicorn with timeout_keep_alive=1 behind the proxy: requests at ~1 s gaps never fail."""
    double = OpenAIDouble("short-keepalive")
    with serve_in_thread(double.app, keep_alive_s=1) as url:
        settings = build_settings(
            redis_url,
            {"control": url, "candidate": url},
            [{"name": "exp", "control": {"upstream": "control"},
              "candidate": {"upstream": "candidate", "model": "cand"}}],
        )  # fmt: skip
        with run_proxy(settings) as proxy:
            client = sdk(proxy.base_url)
            statuses = []
            for gap in (0.0, 0.98, 1.0, 1.02):
                time.sleep(gap)  # the idle gap is what this drill tests
                statuses.append(
                    client.chat.completions.with_raw_response.create(
                        model="exp", messages=MESSAGES
                    ).status_code
                )
            pairs = wait_for_pairs(redis_url, "exp", 4)
    assert statuses == [200] * 4
    assert all(p.control and p.control.ok and p.candidate and p.candidate.ok for p in pairs)


def test_idle_connections_close_before_the_common_server_keep_alive():
    assert UpstreamConfig(base_url="http://x/v1").idle_timeout_seconds < 5.0


# -- pair writes across a lost Redis reply ----------------------------------------------------


def test_a_batch_whose_reply_timed_out_is_not_written_twice(
    redis_url: str, doubles: Doubles, caplog
):
    """Redis executes the batch but its reply never comes (the client times out): the batch is
    sent again and must add nothing (the landed proxy wrote such pairs twice). The relay forwards
    the pair writes whole and withholds their replies, so the case happens at any load."""
    url = urlsplit(redis_url)
    write_pair = hashlib.sha1(WRITE_PAIR.encode()).hexdigest().encode()  # EVALSHA's argument
    with TcpRelay(url.hostname or "127.0.0.1", url.port or 6379) as relay:
        settings = build_settings(
            f"redis://127.0.0.1:{relay.port}{url.path}", doubles.urls,
            [{"name": "exp", "control": {"upstream": "control"},
              "candidate": {"upstream": "candidate"}}],
            pairlog={"flush_interval_ms": 5},
        )  # fmt: skip
        settings.redis.socket_timeout_seconds = 1.0  # how long a withheld reply is waited for
        with run_proxy(settings) as proxy:
            client = sdk(proxy.base_url)

            def ask(n: int) -> None:
                for _ in range(n):
                    client.chat.completions.create(model="exp", messages=MESSAGES)

            def logged() -> float:
                return proxy.metric("tunegate_pairs_logged_total", experiment="exp")

            ask(3)
            wait_until(lambda: logged() == 3, timeout=10, what="3 pairs logged")
            caplog.set_level(logging.WARNING, logger="proxy.pairlog")
            relay.hold(write_pair)  # pair writes are executed, their replies withheld
            ask(5)
            wait_until(
                lambda: relay.held >= 1 and "redis unavailable" in caplog.text,
                timeout=10,
                what="a pair write executed by Redis whose reply was lost",
            )
            relay.release()
            wait_until(lambda: logged() == 8, timeout=10, what="8 pairs logged")
            rewritten = proxy.metric("tunegate_pairs_rewritten_total", experiment="exp")
            dropped = sum(
                proxy.metric("tunegate_pairs_dropped_total", experiment="exp", reason=r)
                for r in ("buffer_full", "rejected", "internal")
            )
    stored = redis.Redis.from_url(redis_url)
    # the sync client's xrange: a list of (id, fields), never None
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], stored.xrange(keys.pairs("exp")))
    stored.close()
    ids = [decode_pair(fields).id for _, fields in entries]
    assert len(ids) == 8 and len(set(ids)) == 8  # every pair once, none twice
    # the executed batch stayed first in the buffer, so the write that succeeded re-sent it
    assert rewritten >= 1
    assert dropped == 0


def test_a_logged_pair_has_every_field_encode_gives_it(redis_url: str, doubles: Doubles):
    """The stream entry holds ``v``, ``json`` and the outcome field that the incremental evidence
    store reads alone (tunegate/outcomes.py), as ``encode`` made them."""
    settings = build_settings(
        redis_url, doubles.urls,
        [{"name": "exp", "control": {"upstream": "control"},
          "candidate": {"upstream": "candidate"}}],
        pairlog={"flush_interval_ms": 5},
    )  # fmt: skip
    with run_proxy(settings) as proxy:
        sdk(proxy.base_url).chat.completions.create(model="exp", messages=MESSAGES)
        [pair] = wait_for_pairs(redis_url, "exp", 1)
    stored = redis.Redis.from_url(redis_url)
    # the sync client's xrange: a list of (id, fields), never None
    [(_, fields)] = cast(list[tuple[bytes, dict[bytes, bytes]]], stored.xrange(keys.pairs("exp")))
    stored.close()
    assert {k.decode(): v for k, v in fields.items()} == encode(pair)
    assert OUTCOME_FIELD.encode() in fields


# -- the buffer after an outage ---------------------------------------------------------------


async def test_after_an_outage_new_pairs_get_in_while_the_backlog_drains(
    redis_server: Any, redis_url: str
):
    """The buffer filled during the outage; what arrives after it is never the part refused."""
    metrics = ProxyMetrics(CollectorRegistry())
    settings = PairLogSettings(buffer_size=50, batch_size=10, flush_interval_ms=5)
    client = aioredis.Redis.from_url(redis_url, socket_timeout=1.0)

    def pair(i: int) -> Pair:
        return Pair.model_construct(
            id=f"pair-{i:03d}", experiment="exp", time=float(i), endpoint=Endpoint.CHAT,
            request="{}", served_arm=Arm.CONTROL, control=None, candidate=None,
            mirror_skipped="mirror_rate", user_key_hash=None, category=None, reference=None,
            labels={},
        )  # fmt: skip

    def counted(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, {"experiment": "exp", **labels}) or 0.0

    try:
        async with PairLogger(
            client, settings, metrics, maxlen=10_000, shutdown_grace_s=5
        ) as logger:
            redis_server.stop()
            try:
                for i in range(80):  # 30 more than the buffer holds
                    logger.submit(pair(i))
            finally:
                redis_server.start()
            for i in range(80, 100):  # the recovered traffic, while the buffer is still full
                logger.submit(pair(i))
        assert logger.depth == 0  # leaving flushed the rest (within the grace)
        # redis-py types xrange's answer loosely: a list of (id, fields)
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(keys.pairs("exp"))
        )
    finally:
        await client.aclose()
    stored = {decode_pair(fields).id for _, fields in entries}
    assert {f"pair-{i:03d}" for i in range(80, 100)} <= stored  # every new pair got in
    assert len(stored) == len(entries) == 50
    assert counted("tunegate_pairs_dropped_total", reason="buffer_full") == 50
    assert counted("tunegate_pairs_logged_total") == 50


# -- failure paths as cheap as the healthy one --------------------------------------------------


_HANDLERS: set[asyncio.Task[None]] = set()


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()  # "reset": the request read, no answer


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    task = asyncio.current_task()
    assert task is not None
    _HANDLERS.add(task)
    try:
        # a client that gave up while connecting closes before its request: not this double's error
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            await reader.read()  # "timeout": never answers; ends when the client gives up
    finally:
        writer.close()
        _HANDLERS.discard(task)


def _ours(garbage: list[Any]) -> int:
    """The objects of the proxy's own code among ``garbage``: instances of its classes and frames
    of its functions (what other tests' threads, still running, leave there is not counted)."""
    import proxy

    root = str(Path(proxy.__file__).parent)
    return sum(
        1
        for obj in garbage
        if type(obj).__module__.startswith("proxy.")
        or (isinstance(obj, FrameType) and obj.f_code.co_filename.startswith(root))
    )


@pytest.mark.parametrize("fault", ["connect", "reset", "timeout", "timeout-connecting"])
def test_a_failing_upstream_leaves_no_garbage_for_the_cyclic_collector(fault: str):
    """Each failed call must be freed by reference counting, not left in reference cycles for the
    collector (the landed client left 10-12 objects per failed call: uvloop builds the protocol
    before connecting, and a failed connection kept its exception, whose frames held it; and a
    connect given up after uvloop called ``connection_made`` left its Connection, parser and
    transport, which ``timeout-connecting`` makes happen on every call: its deadline has passed
    before the connect completes)."""
    import gc

    import uvloop

    from proxy.legs import call_shadow

    timeout_s = 0.0 if fault == "timeout-connecting" else 0.02

    async def failures(n: int) -> str | None:
        server = None
        port = free_port()
        if fault != "connect":
            handler = _hang_up if fault == "reset" else _stall
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
        upstream = LeanHttpUpstream("u", UpstreamConfig(base_url=f"http://127.0.0.1:{port}/v1"))
        error = None
        for _ in range(n):
            result = await call_shadow(
                upstream, "/chat/completions", b"{}", {},
                model="m", stream=False, timeout_s=timeout_s, max_bytes=1024,
            )  # fmt: skip
            error = result.error
        await upstream.aclose()
        if server is not None:
            server.close()
            await server.wait_closed()
        async with asyncio.timeout(5):
            while _HANDLERS:  # the stalled handlers end as the client aborts
                await asyncio.wait(set(_HANDLERS))
        return error

    n = 20 if fault == "timeout" else 200
    uvloop.run(failures(3))  # warm: first-use allocations are not the failure path's
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collector finds, to tell whose it is
    try:
        error = uvloop.run(failures(n))
        gc.collect()
        found = _ours(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert error == fault.removesuffix("-connecting")
    assert found < n  # not one cycle per failure


async def test_with_the_candidate_down_shadow_copies_fail_at_once_and_served_calls_still_try():
    from proxy.errors import UpstreamUnavailable
    from proxy.legs import call_shadow

    upstream = LeanHttpUpstream(
        "down", UpstreamConfig(base_url=f"http://127.0.0.1:{free_port()}/v1")
    )
    results = [
        await call_shadow(
            upstream, "/chat/completions", b"{}", {},
            model="m", stream=False, timeout_s=1.0, max_bytes=1024,
        )
        for _ in range(50)
    ]  # fmt: skip
    assert {r.error for r in results} == {"connect"}
    assert upstream.refused_fast >= 40  # a handful of real connects in the 0.1 s hold periods
    fast = upstream.refused_fast
    for _ in range(3):  # a served call is never answered from the hold: it connects and fails
        with pytest.raises(UpstreamUnavailable) as raised:
            await upstream.send("POST", "/chat/completions", b"{}", {}, 1.0)
        assert "just now" not in raised.value.message
    assert upstream.refused_fast == fast
    await upstream.aclose()
