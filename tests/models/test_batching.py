"""Dynamic batching on a tiny random model: fewer batches than requests, same answers, 429s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import orjson
import pytest

from proxy.errors import Overloaded
from proxy.upstream.local.causal_lm import CausalLMUpstream
from tests.models.conftest import local_cfg

PROMPTS = [
    "Hi",
    "What is two plus three?",
    "Route this ticket to the payments team with high severity please.",
    "The billing page shows error E42.",
    "A small model answers short questions about products, codes and teams.",
    "Lazy dog",
]


def body(prompt: str, max_tokens: int) -> bytes:
    messages = [{"role": "user", "content": prompt}]
    return orjson.dumps(
        {"model": "t", "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    )


async def answer(upstream: CausalLMUpstream, prompt: str, max_tokens: int) -> str:
    response = await upstream.send("POST", "/chat/completions", body(prompt, max_tokens), {}, 30)
    assert response.status == 200, response.body
    return str(orjson.loads(response.body)["choices"][0]["message"]["content"])


async def test_concurrent_requests_share_batches_and_match_solo_answers(tiny_lm):
    lengths = [4, 12, 8, 16, 6, 10]  # rows finish at different steps and leave the batch
    cfg = local_cfg(tiny_lm, max_batch_size=8, batch_window_ms=200.0)
    async with CausalLMUpstream("tiny", cfg) as upstream:
        solo = [await answer(upstream, p, n) for p, n in zip(PROMPTS, lengths, strict=True)]
        assert upstream.batcher is not None
        before = upstream.batcher.batches
        together = await asyncio.gather(
            *(answer(upstream, p, n) for p, n in zip(PROMPTS, lengths, strict=True))
        )
        batches = upstream.batcher.batches - before
        largest = upstream.batcher.largest_batch
    assert batches < len(PROMPTS)
    assert largest > 1
    assert together == solo  # left padding and per-row limits do not change greedy answers


async def test_full_queue_answers_overloaded_with_retry_after(tiny_lm):
    cfg = local_cfg(tiny_lm, max_batch_size=1, max_queue=2, batch_window_ms=0.0)
    async with CausalLMUpstream("tiny", cfg) as upstream:
        results = await asyncio.gather(
            *(answer(upstream, "Hi", 8) for _ in range(6)), return_exceptions=True
        )
        assert upstream.batcher is not None
        rejected = upstream.batcher.rejected
        after = await answer(upstream, "Hi", 8)  # the backend recovers once the queue drains
    overloaded = [r for r in results if isinstance(r, Overloaded)]
    served = [r for r in results if isinstance(r, str)]
    assert len(overloaded) + len(served) == 6
    assert len(overloaded) >= 1 and len(served) >= 2
    assert rejected == len(overloaded)
    assert all(e.status == 429 and e.retry_after >= 1 for e in overloaded)
    assert all(s == after for s in served)


async def test_client_leaving_a_stream_stops_its_row(tiny_lm):
    cfg = local_cfg(tiny_lm, max_batch_size=4)
    async with CausalLMUpstream("tiny", cfg) as upstream:
        request = orjson.dumps(
            {"model": "t", "prompt": "Hi", "max_tokens": 200, "temperature": 0, "stream": True}
        )
        async with upstream.stream("/completions", request, {}, 30) as answer_stream:
            chunks = answer_stream.chunks()
            first = await anext(chunks)
            await cast(AsyncGenerator[bytes, None], chunks).aclose()
        assert first.startswith(b"data: ")
        # the cancelled row leaves the batch; the next request is served promptly
        assert await asyncio.wait_for(answer(upstream, "Hi", 4), 20)


async def test_timeout_is_upstream_timeout(tiny_lm):
    from proxy.errors import UpstreamTimeout

    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        request = body("Hi", 200)
        with pytest.raises(UpstreamTimeout):
            await upstream.send("POST", "/chat/completions", request, {}, 0.0001)
