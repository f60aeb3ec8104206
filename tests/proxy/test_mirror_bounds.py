"""Shadow copies are bounded (concurrency, budget, rate); a client disconnect cancels the call."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
from openai.types.chat import ChatCompletionMessageParam

from bench.servers.openai_double import Reply
from proxy.mirror import ShadowBudgetMeter
from tests.proxy.conftest import Doubles, experiment, sdk, wait_for_pairs, wait_until
from tunegate.experiments import ShadowBudget
from tunegate.records import Arm, ArmResult

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def chat(base_url: str, model: str = "exp") -> str:
    client = sdk(base_url)
    out = client.chat.completions.create(model=model, messages=MESSAGES)
    return str(out.choices[0].message.content)


def test_concurrency_limit_drops_and_counts(proxy_factory, doubles: Doubles, redis_url: str):
    doubles.candidate.script(Reply(hang=True))
    with proxy_factory([experiment("exp")], mirror={"max_inflight": 2}) as proxy:
        for _ in range(5):
            assert chat(proxy.base_url) == "Hello from control."
        wait_for_pairs(redis_url, "exp", 3)  # the three dropped copies log at once
        assert proxy.metric("tunegate_shadow_inflight", experiment="exp") == 2
        dropped = proxy.metric(
            "tunegate_shadow_dropped_total", experiment="exp", reason="concurrency"
        )
        assert dropped == 3
        doubles.candidate.reset()  # release the hung copies: they finish and log too
        pairs = wait_for_pairs(redis_url, "exp", 5)
    assert sorted(str(p.mirror_skipped) for p in pairs) == ["None"] * 2 + ["concurrency"] * 3


def test_request_budget_caps_copies_per_minute(proxy_factory, redis_url: str):
    exp = experiment("exp", shadow_budget={"requests_per_minute": 2})
    with proxy_factory([exp]) as proxy:
        for _ in range(4):
            chat(proxy.base_url)
        pairs = wait_for_pairs(redis_url, "exp", 4)
        assert proxy.metric("tunegate_shadow_dropped_total", experiment="exp", reason="budget") == 2
    assert [p.mirror_skipped for p in pairs].count("budget") == 2
    assert sum(p.candidate is not None for p in pairs) == 2


def test_token_budget_meter_uses_usage():
    now = [0.0]
    meter = ShadowBudgetMeter(ShadowBudget(tokens_per_minute=20), clock=lambda: now[0])
    result = ArmResult(upstream="u", model="m", status=200,
                       body='{"choices": [], "usage": {"total_tokens": 12}}')  # fmt: skip
    assert meter.admit()
    meter.charge(result)
    assert meter.admit()
    meter.charge(result)
    assert not meter.admit()  # 24 tokens spent of 20
    now[0] = 61.0
    assert meter.admit()  # a new minute


def test_mirror_rate_zero_skips_with_reason(proxy_factory, doubles: Doubles, redis_url: str):
    with proxy_factory([experiment("exp", mirror_rate=0)]) as proxy:
        chat(proxy.base_url)
        [pair] = wait_for_pairs(redis_url, "exp", 1)
        assert (
            proxy.metric("tunegate_shadow_dropped_total", experiment="exp", reason="mirror_rate")
            == 1
        )
    assert pair.mirror_skipped == "mirror_rate" and pair.candidate is None
    assert doubles.candidate.received == []


def test_client_disconnect_cancels_the_served_call(proxy_factory, doubles: Doubles, redis_url: str):
    doubles.control.script(Reply(delay_s=3))
    with proxy_factory([experiment("exp")]) as proxy:
        started = time.perf_counter()
        with contextlib.suppress(httpx.ReadTimeout):
            httpx.post(f"{proxy.base_url}/chat/completions", timeout=0.3,
                       json={"model": "exp", "messages": MESSAGES})  # fmt: skip
        [pair] = wait_for_pairs(redis_url, "exp", 1, timeout=2.5)
        assert time.perf_counter() - started < 2.5  # logged before the upstream would answer
        assert proxy.metric(
            "tunegate_requests_total", experiment="exp", arm="control",
            endpoint="chat.completions", status="499",
        ) == 1  # fmt: skip
    assert pair.control is not None
    assert pair.control.error == "cancelled" and pair.mirror_skipped == "client_disconnected"


def test_client_disconnect_mid_stream(proxy_factory, doubles: Doubles, redis_url: str):
    doubles.control.script(Reply(chunks=["a"] * 50, chunk_delay_s=0.05))

    async def read_two_chunks(base_url: str) -> None:
        async with httpx.AsyncClient() as client:
            body = {"model": "exp", "messages": MESSAGES, "stream": True}
            async with client.stream("POST", f"{base_url}/chat/completions", json=body) as resp:
                seen = 0
                async for _ in resp.aiter_raw():
                    seen += 1
                    if seen == 2:
                        break

    with proxy_factory([experiment("exp")]) as proxy:
        asyncio.run(read_two_chunks(proxy.base_url))
        [pair] = wait_for_pairs(redis_url, "exp", 1, timeout=2.0)
    assert pair.control is not None
    assert pair.control.error == "cancelled" and pair.control.stream
    assert pair.control.body.count("data:") < 50
    assert pair.candidate is not None and pair.served_arm is Arm.CONTROL


def test_slow_candidate_does_not_delay_the_stream(proxy_factory, doubles: Doubles, redis_url):
    doubles.candidate.script(Reply(delay_s=1.0))
    with proxy_factory([experiment("exp")]) as proxy:
        client = sdk(proxy.base_url)
        started = time.perf_counter()
        stream = client.chat.completions.create(model="exp", messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        elapsed = time.perf_counter() - started
        assert text == "Hello from control." and elapsed < 0.8
        wait_until(lambda: proxy.metric("tunegate_shadow_inflight", experiment="exp") == 0,
                   what="the copy to finish")  # fmt: skip
        [pair] = wait_for_pairs(redis_url, "exp", 1)
    assert pair.candidate is not None and pair.candidate.latency_s is not None
    assert pair.candidate.ok and pair.candidate.latency_s >= 1.0
