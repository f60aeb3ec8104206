"""A slow, failing, hung or absent arm, and bad input: what the user sees and what the pair says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from bench.servers.openai_double import Reply
from cli.server import free_port
from tests.proxy.conftest import Doubles, Proxy, experiment, sdk, wait_for_pairs

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def chat(proxy: Proxy, model: str = "exp-shadow", timeout: float = 10.0, **kw: Any):
    client = sdk(proxy.base_url, timeout=timeout)
    return client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **kw)


def timed(proxy: Proxy, **kw: Any) -> float:
    started = time.perf_counter()
    chat(proxy, **kw).parse()
    return time.perf_counter() - started


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(hang=True), "timeout"),
        (Reply(status=500), "status"),
        (Reply(malformed=True), None),
    ],
    ids=["hang", "error", "malformed"],
)
def test_bad_candidate_does_not_touch_the_user(
    proxy_factory, doubles: Doubles, redis_url: str, reply: Reply, error: str | None
):
    doubles.control.script(Reply(delay_s=0.02))
    with proxy_factory([experiment("exp")], mirror={"timeout_seconds": 0.5}) as proxy:
        baseline = min(timed(proxy, model="exp") for _ in range(3))
        doubles.candidate.script(reply)
        wait_for_pairs(redis_url, "exp", 3)
        served = [chat(proxy, model="exp") for _ in range(3)]
        assert all(r.status_code == 200 for r in served)
        assert all(r.parse().choices[0].message.content == "Hello from control." for r in served)
        latency = min(timed(proxy, model="exp") for _ in range(2))
        assert latency < baseline + 0.1  # the hang (0.5 s shadow timeout) is not felt
        pairs = wait_for_pairs(redis_url, "exp", 8)[3:]
    for pair in pairs:
        assert pair.control is not None and pair.control.ok
        assert pair.candidate is not None
        assert pair.candidate.error == error
        if error == "timeout":
            assert pair.candidate.latency_s is not None
            assert pair.candidate.status is None and pair.candidate.latency_s >= 0.45
        if error == "status":
            assert pair.candidate.status == 500 and "scripted failure" in pair.candidate.body
        if error is None:
            assert pair.candidate.body == '{"choices": ['


def test_candidate_down_is_recorded(proxy_factory, doubles: Doubles, redis_url: str):
    urls = dict(doubles.urls, candidate=f"http://127.0.0.1:{free_port()}")
    from tests.proxy.conftest import build_settings, run_proxy

    with run_proxy(build_settings(redis_url, urls, [experiment("exp")])) as proxy:
        response = chat(proxy, model="exp")
        assert response.status_code == 200
        [pair] = wait_for_pairs(redis_url, "exp", 1)
    assert pair.candidate is not None
    assert pair.candidate.error == "connect" and pair.candidate.status is None
    assert (
        proxy.metric(
            "tunegate_upstream_errors_total", experiment="exp", arm="candidate", reason="connect"
        )
        == 1
    )


def test_served_error_status_is_relayed_with_its_body(proxy: Proxy, doubles: Doubles, redis_url):
    doubles.control.script(Reply(status=429, error_body=b'{"error": {"message": "slow down"}}'))
    with pytest.raises(openai.RateLimitError) as info:
        chat(proxy)
    assert info.value.status_code == 429
    assert info.value.body == {"message": "slow down"}
    assert info.value.response.headers["x-tunegate-pair-id"]
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.control is not None
    assert pair.control.status == 429 and pair.control.error == "status"
    assert pair.candidate is not None and pair.candidate.ok  # mirrored all the same


def test_served_error_status_on_stream_is_relayed(proxy: Proxy, doubles: Doubles, redis_url):
    doubles.control.script(Reply(status=503))
    with pytest.raises(openai.InternalServerError) as info:
        chat(proxy, stream=True)
    assert info.value.status_code == 503
    assert cast(dict[str, Any], info.value.body)["message"] == "scripted failure"


def test_served_upstream_down_is_a_502_openai_error(doubles: Doubles, redis_url: str):
    from tests.proxy.conftest import build_settings, run_proxy

    urls = dict(doubles.urls, control=f"http://127.0.0.1:{free_port()}")
    with run_proxy(build_settings(redis_url, urls, [experiment("exp")])) as proxy:
        for stream in (False, True):
            response = httpx.post(
                f"{proxy.base_url}/chat/completions",
                json={"model": "exp", "messages": MESSAGES, "stream": stream},
            )
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "upstream_unavailable"
            assert response.headers["x-tunegate-pair-id"]
        pairs = wait_for_pairs(redis_url, "exp", 2)
    assert all(p.control is not None for p in pairs)
    assert [p.control.error for p in pairs if p.control is not None] == ["connect", "connect"]
    assert [p.mirror_skipped for p in pairs] == ["served_failed", "served_failed"]


def test_served_timeout_is_a_504(proxy_factory, doubles: Doubles, redis_url: str):
    doubles.control.script(Reply(hang=True))
    from tests.proxy.conftest import build_settings, run_proxy

    settings = build_settings(redis_url, doubles.urls, [experiment("exp")])
    settings.upstreams["control"].timeout_seconds = 0.3
    with run_proxy(settings) as proxy:
        response = httpx.post(f"{proxy.base_url}/chat/completions",
                              json={"model": "exp", "messages": MESSAGES})  # fmt: skip
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "upstream_error"
        [pair] = wait_for_pairs(redis_url, "exp", 1)
    assert pair.control is not None
    assert pair.control.error == "timeout"


@pytest.mark.parametrize(
    ("content", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (b'{"messages": []}', 400, "model"),
        (b'{"model": 3}', 400, "model"),
        (
            b'{"model": "no-such-model", "messages": [{"role": "user", "content": "q"}]}',
            404,
            "model",
        ),  # (empty messages are a 400 of their own: tests/proxy/test_edge_errors.py)
    ],
    ids=["malformed", "not-object", "no-model", "model-not-string", "unknown-model"],
)
def test_bad_input_gets_an_openai_error(proxy: Proxy, content: bytes, status: int, param):
    response = httpx.post(
        f"{proxy.base_url}/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]


def test_body_over_the_limit_is_413(proxy_factory):
    with proxy_factory([experiment("exp")], max_body_bytes=2048) as proxy:
        big = {"model": "exp", "messages": [{"role": "user", "content": "x" * 4096}]}
        response = httpx.post(f"{proxy.base_url}/chat/completions", json=big)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"model": "exp", "messages": [{"role": "user", "content": "'
            yield b"y" * 4096
            yield b'"}]}'

        chunked = httpx.post(f"{proxy.base_url}/chat/completions", content=chunks())
        assert chunked.status_code == 413


def test_unknown_model_and_other_paths_without_passthrough_are_404(proxy: Proxy):
    with pytest.raises(openai.NotFoundError) as info:
        chat(proxy, model="gpt-unknown")
    assert cast(dict[str, Any], info.value.body)["code"] == "model_not_found"
    response = httpx.post(f"{proxy.base_url}/responses", json={"model": "x", "input": "hi"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_passthrough_unknown_models_and_paths(proxy_factory, doubles: Doubles, redis_url: str):
    with proxy_factory([experiment("exp")], passthrough_upstream="other") as proxy:
        out = chat(proxy, model="gpt-4o").parse()
        assert out.choices[0].message.content == "Hello from other."
        stream = chat(proxy, model="gpt-4o", stream=True).parse()
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
            "Hello from other."
        )
        response = httpx.post(
            f"{proxy.base_url}/responses?x=1",
            json={"model": "gpt-4o", "input": "hi"},
            headers={"authorization": "Bearer sk-pass"},
        )
        assert response.json() == {"double": "other", "path": "/v1/responses"}
        got = httpx.get(f"{proxy.base_url}/files/abc").json()
        assert got == {"double": "other", "path": "/v1/files/abc"}
    received = doubles.other.received
    assert [r.json["model"] for r in received[:2]] == ["gpt-4o", "gpt-4o"]
    assert received[2].headers["authorization"] == "Bearer sk-pass"
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.keys("tg:*pairs") == []  # passthrough makes no pairs
    client.close()
