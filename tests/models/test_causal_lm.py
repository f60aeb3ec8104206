"""The causal-LM backend on a tiny random model: bodies, usage, streaming, stops, sampling, 400s."""

from __future__ import annotations

import orjson
import pytest

from proxy.upstream.local import build_local_upstream
from proxy.upstream.local.causal_lm import CausalLMUpstream
from tests.models.conftest import local_cfg
from tunegate.records import ArmResult
from tunegate.responses import parse_response

CHAT = "/chat/completions"
MESSAGES = [{"role": "user", "content": "Route this ticket to the payments team."}]


def chat_body(**fields: object) -> bytes:
    return orjson.dumps({"model": "tiny", "messages": MESSAGES, **fields})


async def complete(upstream: CausalLMUpstream, **fields: object) -> dict[str, object]:
    response = await upstream.send("POST", CHAT, chat_body(**fields), {}, 30)
    assert response.status == 200, response.body
    body = orjson.loads(response.body)
    assert isinstance(body, dict)
    return body


async def stream_text(
    upstream: CausalLMUpstream, path: str, body: bytes
) -> tuple[list[bytes], str]:
    async with upstream.stream(path, body, {}, 30) as answer:
        assert answer.status == 200
        assert answer.content_type == "text/event-stream"
        chunks = [chunk async for chunk in answer.chunks()]
    return chunks, b"".join(chunks).decode()


def content(body: dict[str, object]) -> str:
    choices = body["choices"]
    assert isinstance(choices, list)
    return str(choices[0]["message"]["content"])


async def test_chat_body_and_usage(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        assert await upstream.ready() is None
        body = await complete(upstream, max_tokens=12, temperature=0)
        lm = upstream.lm
        assert lm is not None
        prompt = lm.tokenizer.apply_chat_template(
            MESSAGES, add_generation_prompt=True, tokenize=False
        )
        prompt_tokens = len(lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert body["object"] == "chat.completion"
    assert str(body["id"]).startswith("chatcmpl-")
    assert body["model"] == "tiny"
    choice = body["choices"][0]  # type: ignore[index]
    assert choice["message"]["role"] == "assistant"
    usage = body["usage"]
    assert usage["prompt_tokens"] == prompt_tokens  # type: ignore[index]
    if choice["finish_reason"] == "length":
        assert usage["completion_tokens"] == 12  # type: ignore[index]
    else:
        assert choice["finish_reason"] == "stop"
        assert usage["completion_tokens"] <= 12  # type: ignore[index]
    assert usage["total_tokens"] == prompt_tokens + usage["completion_tokens"]  # type: ignore[index]


async def test_stream_matches_whole_answer_token_by_token(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        whole = content(await complete(upstream, max_tokens=16, temperature=0))
        body = chat_body(
            max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}
        )
        chunks, raw = await stream_text(upstream, CHAT, body)
    events = [orjson.loads(c[len(b"data: ") :]) for c in chunks if c != b"data: [DONE]\n\n"]
    assert chunks[-1] == b"data: [DONE]\n\n"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]]
    assert sum(1 for p in pieces if p) > 3  # token by token, not one block
    assert "".join(pieces) == whole
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] >= 1
    parsed = parse_response(ArmResult(upstream="tiny", model="tiny", stream=True, body=raw))
    assert parsed.texts == [whole]
    assert parsed.usage["total_tokens"] == events[-1]["usage"]["total_tokens"]


async def test_stop_sequence_cuts_text_and_never_streams_it(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        free = content(await complete(upstream, max_tokens=24, temperature=0))
        assert len(free) > 8, free
        stop = free[5:8]
        expected = free[: free.find(stop)]
        cut = await complete(upstream, max_tokens=24, temperature=0, stop=[stop, "\x00never"])
        body = chat_body(max_tokens=24, temperature=0, stop=stop, stream=True)
        chunks, raw = await stream_text(upstream, CHAT, body)
    assert content(cut) == expected
    assert cut["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    parsed = parse_response(ArmResult(upstream="tiny", model="tiny", stream=True, body=raw))
    assert parsed.texts == [expected]
    assert parsed.finish_reasons == ["stop"]
    assert not any(stop.encode() in chunk for chunk in chunks[1:-1] if b'"content"' in chunk)


async def test_completions_endpoint_and_token_prompt(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        body = orjson.dumps(
            {"model": "tiny", "prompt": "The quick brown", "max_tokens": 5, "temperature": 0}
        )
        response = await upstream.send("POST", "/completions", body, {}, 30)
        ids = upstream.lm.tokenizer("The quick brown")["input_ids"]  # type: ignore[union-attr]
        by_ids = orjson.dumps({"model": "tiny", "prompt": ids, "max_tokens": 5, "temperature": 0})
        same = await upstream.send("POST", "/completions", by_ids, {}, 30)
        _, raw = await stream_text(
            upstream, "/completions", orjson.dumps({**orjson.loads(body), "stream": True})
        )
    answer = orjson.loads(response.body)
    assert answer["object"] == "text_completion"
    assert answer["usage"]["prompt_tokens"] == len(ids)
    assert orjson.loads(same.body)["choices"][0]["text"] == answer["choices"][0]["text"]
    parsed = parse_response(ArmResult(upstream="t", model="t", stream=True, body=raw))
    assert parsed.texts == [answer["choices"][0]["text"]]


async def test_seeded_sampling_repeats_and_seeds_differ(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        runs = [
            content(await complete(upstream, max_tokens=16, temperature=1.5, top_p=0.95, seed=seed))
            for seed in (7, 7, 8, 9)
        ]
        greedy = content(await complete(upstream, max_tokens=16, temperature=0))
    assert runs[0] == runs[1]
    assert len(set(runs[1:]) | {greedy}) >= 3


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"stop": 3}, "stop"),
        ({"messages": []}, "messages"),
    ],
)
async def test_invalid_request_is_400_with_openai_error(tiny_lm, fields, param):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        response = await upstream.send("POST", CHAT, chat_body(**fields), {}, 30)
        async with upstream.stream(CHAT, chat_body(stream=True, **fields), {}, 30) as answer:
            streamed = b"".join([c async for c in answer.chunks()])
            status = answer.status
    assert response.status == 400
    error = orjson.loads(response.body)["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert (status, streamed) == (400, response.body)


async def test_build_local_upstream_loads_lazily_and_reports_readiness(tiny_lm, tmp_path):
    upstream = build_local_upstream("tiny", local_cfg(tiny_lm))
    missing = build_local_upstream("gone", local_cfg(tmp_path / "nothing"))
    try:
        assert await upstream.ready() in (None, "model loading")
        body = chat_body(max_tokens=3, temperature=0)
        assert (await upstream.send("POST", CHAT, body, {}, 30)).status == 200
        assert await upstream.ready() is None
        with pytest.raises(Exception, match="failed to load"):
            await missing.send("POST", CHAT, body, {}, 30)
        reason = await missing.ready()
        assert reason is not None and "does not exist" in reason
    finally:
        await upstream.aclose()
        await missing.aclose()


async def test_send_with_stream_true_returns_the_whole_event_stream(tiny_lm):
    async with CausalLMUpstream("tiny", local_cfg(tiny_lm)) as upstream:
        whole = content(await complete(upstream, max_tokens=10, temperature=0))
        response = await upstream.send(
            "POST", CHAT, chat_body(max_tokens=10, temperature=0, stream=True), {}, 30
        )
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    assert response.body.endswith(b"data: [DONE]\n\n")
    raw = response.body.decode()
    parsed = parse_response(ArmResult(upstream="tiny", model="tiny", stream=True, body=raw))
    assert parsed.texts == [whole]
