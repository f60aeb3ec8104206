"""The greedy memo: a repeated temperature-0 request is answered once, exactly as decoding would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from bench.models.tiny import build_causal_lm, build_lora
from proxy.upstream.local.causal_lm import CausalLMUpstream
from proxy.upstream.local.loading import greedy_memo_stats
from proxy.upstream.local.memo import GreedyMemo, MemoAnswer, MemoKey
from tests.models.conftest import local_cfg

CHAT = "/chat/completions"


def body(prompt: str, **fields: object) -> bytes:
    fields = {"max_tokens": 12, "temperature": 0, **fields}
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": prompt}], **fields})


async def answer(upstream: CausalLMUpstream, raw: bytes, shadow: bool = False) -> dict[str, object]:
    response = await upstream.send("POST", CHAT, raw, {}, 30, shadow=shadow)
    assert response.status == 200, response.body
    parsed = orjson.loads(response.body)
    assert isinstance(parsed, dict)
    return parsed


def text_and_usage(parsed: dict[str, object]) -> tuple[object, object, object]:
    choice = parsed["choices"][0]  # type: ignore[index]
    return choice["message"]["content"], choice["finish_reason"], parsed["usage"]


@pytest.fixture(scope="module")
def memo_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A base of its own (no other test's answers in its memo) and a LoRA for it."""
    base = build_causal_lm(tmp_path_factory.mktemp("memo-base"), seed=5)
    return base, build_lora(base, tmp_path_factory.mktemp("memo-lora"), seed=6)


def jobs(*upstreams: CausalLMUpstream) -> int:
    return sum(u.batcher.jobs for u in upstreams if u.batcher is not None)


async def test_repeat_is_reused_per_adapter_and_equals_a_fresh_decode(memo_pair):
    base, lora = memo_pair
    cfg = {"reuse_greedy": True}
    async with (
        CausalLMUpstream("control", local_cfg(base, **cfg)) as control,
        CausalLMUpstream("candidate", local_cfg(base, adapter=str(lora), **cfg)) as candidate,
        CausalLMUpstream("plain", local_cfg(base)) as plain,
        CausalLMUpstream("plain-lora", local_cfg(base, adapter=str(lora))) as plain_lora,
    ):
        first = await answer(control, body("Which team owns refunds?"))
        again = await answer(control, body("Which team owns refunds?", seed=99, user="u2"))
        assert jobs(control) == 1  # decoded once; seed and user do not change a greedy answer
        assert text_and_usage(again) == text_and_usage(first)
        assert again["id"] != first["id"]  # a new response, not a copy of the old body
        fresh = await answer(plain, body("Which team owns refunds?"))  # no memo: decodes
        assert jobs(plain) == 1 and text_and_usage(fresh) == text_and_usage(first)

        tuned = await answer(candidate, body("Which team owns refunds?"))
        assert jobs(candidate) == 1  # another adapter: its own answer, never the base's
        tuned_fresh = await answer(plain_lora, body("Which team owns refunds?"))
        assert text_and_usage(tuned) == text_and_usage(tuned_fresh)
        assert text_and_usage(tuned) != text_and_usage(first)
        await answer(candidate, body("Which team owns refunds?"), shadow=True)
        assert jobs(candidate) == 1

        await answer(control, body("Which team owns refunds?", max_tokens=5))  # another limit
        await answer(control, body("Which team owns refunds?", temperature=0.7, seed=1))
        await answer(control, body("Which team owns refunds?", temperature=0.7, seed=1))
        assert jobs(control) == 4  # sampled requests are never reused
        assert control.lm is not None
        stats = control.lm.memo.stats
        assert (stats[None].computed, stats[None].reused) == (2, 1)
        assert (stats[str(lora.resolve())].computed, stats[str(lora.resolve())].reused) == (1, 1)
        totals = greedy_memo_stats()  # what the demo reports: by adapter directory, or "base"
        assert totals[str(lora.resolve())].reused >= 1 and totals["base"].computed >= 2


async def test_identical_requests_in_flight_decode_once_and_streams_replay(memo_pair):
    base, _ = memo_pair
    async with CausalLMUpstream("c", local_cfg(base, reuse_greedy=True)) as upstream:
        raw = body("Is the checkout page down?")
        answers = await asyncio.gather(*(answer(upstream, raw) for _ in range(4)))
        assert jobs(upstream) == 1
        assert len({orjson.dumps(text_and_usage(a)) for a in answers}) == 1
        async with upstream.stream(
            CHAT, body("Is the checkout page down?", stream=True), {}, 30
        ) as s:
            replay = b"".join([chunk async for chunk in s.chunks()]).decode()
        assert jobs(upstream) == 1
        text = str(text_and_usage(answers[0])[0])
        assert orjson.dumps(text).decode()[1:-1] in replay and replay.endswith("[DONE]\n\n")


async def test_served_claim_never_waits_for_a_shadow_copy_and_waiters_take_over():
    memo = GreedyMemo()
    key = MemoKey(None, (1, 2, 3), 8, ())
    assert await memo.claim(key, shadow=True) is True  # the shadow copy decodes
    assert await memo.claim(key, shadow=False) is False  # served: decodes alongside at once
    waiter = asyncio.create_task(memo.claim(key, shadow=True))  # another shadow copy waits
    await asyncio.sleep(0)
    assert not waiter.done()
    memo.finish(key, None, owner=True)  # the first was preempted: nothing kept
    assert await asyncio.wait_for(waiter, 5) is True  # so the waiter owns the decode now
    kept = MemoAnswer("ok", "stop", 1)
    memo.finish(key, kept, owner=True)
    assert await memo.claim(key, shadow=False) == kept
    assert (memo.stats[None].computed, memo.stats[None].reused) == (1, 1)
