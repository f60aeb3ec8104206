"""Every /v1 endpoint through the official openai SDK: what the user gets and the pair in Redis."""

from __future__ import annotations

import json
from typing import cast

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam

from bench.servers.openai_double import Reply
from tests.proxy.conftest import Doubles, Proxy, sdk, wait_for_pairs
from tunegate.records import Arm, Endpoint
from tunegate.responses import parse_response


def client(proxy: Proxy) -> openai.OpenAI:
    return sdk(proxy.base_url, api_key="sk-client-secret")


def test_chat_shadow_serves_control_and_logs_both(proxy: Proxy, doubles: Doubles, redis_url: str):
    raw = client(proxy).chat.completions.with_raw_response.create(
        model="exp-shadow",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-tunegate-category": "greeting", "x-user-id": "u1"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from control."
    pair_id = raw.headers["x-tunegate-pair-id"]
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.id == pair_id
    assert pair.served_arm is Arm.CONTROL
    assert pair.endpoint is Endpoint.CHAT
    assert pair.category == "greeting"
    assert pair.user_key_hash is not None and "u1" not in pair.user_key_hash
    assert pair.control is not None and pair.candidate is not None
    assert parse_response(pair.control).text == "Hello from control."
    assert parse_response(pair.candidate).text == "Hello from candidate."
    assert pair.candidate.model == "cand-model" and pair.control.model == "exp-shadow"
    assert pair.control.status == 200 and pair.candidate.status == 200
    assert pair.control.latency_s is not None and pair.control.latency_s > 0
    # the usage block's counts ride on the record (schema 2): the controller parses no body
    assert pair.schema_version == 2
    assert (pair.control.prompt_tokens, pair.control.completion_tokens) == (5, 7)
    assert pair.candidate.total_tokens == 12
    assert json.loads(pair.request)["messages"][0]["content"] == "hi"
    # the candidate got the renamed model, the control the client's
    assert doubles.candidate.wait_for(1)[0].json["model"] == "cand-model"
    assert doubles.control.received[0].json["model"] == "exp-shadow"


async def test_async_stream_relays_chunks_and_pair_records_both_texts(
    proxy: Proxy, doubles: Doubles, redis_url: str
):
    doubles.control.script(Reply(chunks=["one ", "two ", "three"], chunk_delay_s=0.01))
    async with openai.AsyncOpenAI(base_url=proxy.base_url, api_key="k", max_retries=0) as aclient:
        stream = await aclient.chat.completions.create(
            model="exp-shadow",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces) == "one two three"
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.control is not None and pair.control.stream
    assert parse_response(pair.control).text == "one two three"
    assert pair.candidate is not None
    assert parse_response(pair.candidate).text == "Hello from candidate."
    assert pair.control.latency_s is not None
    assert pair.control.ttft_s is not None and pair.control.ttft_s < pair.control.latency_s
    assert pair.control.itl_mean_s is not None and pair.control.itl_mean_s >= 0.005
    # the SSE path: counts from the final usage chunk
    assert (pair.control.prompt_tokens, pair.control.completion_tokens) == (5, 7)


def test_stream_pair_id_header_and_tool_calls(proxy: Proxy, doubles: Doubles, redis_url: str):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
    doubles.control.script(Reply(text="", tool_calls=[call]))
    doubles.candidate.script(Reply(text="", tool_calls=[call]))
    tools: list[ChatCompletionToolParam] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    ]
    with client(proxy).chat.completions.with_streaming_response.create(
        model="exp-shadow", messages=[{"role": "user", "content": "w"}], tools=tools, stream=True
    ) as response:
        pair_id = response.headers["x-tunegate-pair-id"]
        chunks = list(response.parse())
    names = [
        tc.function.name
        for c in chunks
        for ch in c.choices
        for tc in ch.delta.tool_calls or []
        if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.id == pair_id
    for arm in (pair.control, pair.candidate):
        assert arm is not None
        parsed = parse_response(arm)
        assert parsed.tool_calls[0][0]["function"] == call["function"]
        assert parsed.finish_reasons == ["tool_calls"]
    assert doubles.control.received[0].json["tools"] == tools


def test_completions_n_response_format_and_unknown_fields_pass_through(
    proxy: Proxy, doubles: Doubles, redis_url: str
):
    result = client(proxy).completions.create(
        model="exp-shadow", prompt="say", n=2, extra_body={"custom_field": {"x": 1}}
    )
    assert [c.text for c in result.choices] == ["Hello from control."] * 2
    chat = client(proxy).chat.completions.create(
        model="exp-shadow",
        messages=[{"role": "user", "content": "j"}],
        response_format={"type": "json_object"},
    )
    assert chat.choices[0].message.content == "Hello from control."
    sent = [r.json for r in doubles.candidate.wait_for(2)]
    assert sent[0]["n"] == 2 and sent[0]["custom_field"] == {"x": 1}
    assert sent[1]["response_format"] == {"type": "json_object"}
    pairs = wait_for_pairs(redis_url, "exp-shadow", 2)
    assert [p.endpoint for p in pairs] == [Endpoint.COMPLETIONS, Endpoint.CHAT]
    assert pairs[0].candidate is not None
    assert parse_response(pairs[0].candidate).texts == ["Hello from candidate."] * 2


def test_completions_stream(proxy: Proxy, redis_url: str):
    stream = client(proxy).completions.create(model="exp-shadow", prompt="p", stream=True)
    text = "".join(c.choices[0].text for c in stream if c.choices)
    assert text == "Hello from control."
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.candidate is not None
    assert parse_response(pair.candidate).text == "Hello from candidate."


def test_embeddings_retrieval_labels(proxy: Proxy, redis_url: str):
    result = client(proxy).embeddings.create(
        model="exp-shadow",
        input=["query", "doc a", "doc b"],
        extra_headers={"x-tunegate-label-task": "retrieval", "x-tunegate-reference": "1"},
    )
    assert len(result.data) == 3 and len(result.data[0].embedding) == 8
    [pair] = wait_for_pairs(redis_url, "exp-shadow", 1)
    assert pair.endpoint is Endpoint.EMBEDDINGS
    assert pair.labels == {"task": "retrieval"} and pair.reference == "1"
    assert pair.candidate is not None
    assert len(parse_response(pair.candidate).embeddings) == 3


def test_models_lists_experiments(proxy: Proxy):
    ids = [m.id for m in client(proxy).models.list()]
    assert ids == [e.name for e in proxy.settings.experiments]


def test_credentials_forwarded_but_never_stored(proxy: Proxy, doubles: Doubles, redis_url: str):
    client(proxy).chat.completions.create(
        model="exp-shadow",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"api-key": "azure-secret-key"},
    )
    wait_for_pairs(redis_url, "exp-shadow", 1)
    received = doubles.candidate.wait_for(1)[0].headers
    assert received["authorization"] == "Bearer sk-client-secret"
    assert received["api-key"] == "azure-secret-key"
    stored = httpx.get(f"{proxy.url}/metrics").text
    import redis as redis_lib

    r = redis_lib.Redis.from_url(redis_url)
    dump = b"".join(
        v if isinstance(v, bytes) else b""
        for key in r.keys("*")
        if r.type(key) == b"stream"
        for _, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], r.xrange(key))
        for v in fields.values()
    )
    r.close()
    assert dump and b"sk-client-secret" not in dump and b"azure-secret-key" not in dump
    assert "sk-client-secret" not in stored


@pytest.mark.parametrize("stage_model", ["exp-promoted"])
def test_promoted_serves_candidate(proxy: Proxy, redis_url: str, stage_model: str):
    out = client(proxy).chat.completions.create(
        model=stage_model, messages=[{"role": "user", "content": "x"}]
    )
    assert out.choices[0].message.content == "Hello from candidate."
    [pair] = wait_for_pairs(redis_url, stage_model, 1)
    assert pair.served_arm is Arm.CANDIDATE
    assert pair.control is not None
    assert parse_response(pair.control).text == "Hello from control."


def test_configured_upstream_key_replaces_the_client_key(
    doubles: Doubles, redis_url: str, monkeypatch: pytest.MonkeyPatch
):
    from tests.proxy.conftest import build_settings, experiment, run_proxy

    monkeypatch.setenv("TG_TEST_CANDIDATE_KEY", "sk-candidate-own")
    settings = build_settings(redis_url, doubles.urls, [experiment("exp")])
    raw = settings.upstreams["candidate"].model_dump() | {"api_key_env": "TG_TEST_CANDIDATE_KEY"}
    settings.upstreams["candidate"] = type(settings.upstreams["candidate"]).model_validate(raw)
    doubles.reset()
    with run_proxy(settings) as proxy:
        sdk(proxy.base_url, api_key="sk-client").chat.completions.create(
            model="exp", messages=[{"role": "user", "content": "x"}]
        )
        [pair] = wait_for_pairs(redis_url, "exp", 1)
    assert doubles.candidate.received[0].headers["authorization"] == "Bearer sk-candidate-own"
    assert doubles.control.received[0].headers["authorization"] == "Bearer sk-client"
    assert "sk-candidate-own" not in pair.model_dump_json()
    doubles.reset()


def test_shutdown_flushes_pairs_and_waits_for_copies(
    proxy_factory, doubles: Doubles, redis_url: str
):
    from tests.proxy.conftest import experiment

    doubles.candidate.script(Reply(delay_s=0.3))
    with proxy_factory([experiment("exp")]) as proxy:
        for _ in range(3):
            sdk(proxy.base_url).chat.completions.create(
                model="exp", messages=[{"role": "user", "content": "x"}]
            )
    # the proxy is gone: every pair, with its slow shadow leg, reached Redis on the way out
    pairs = wait_for_pairs(redis_url, "exp", 3, timeout=0.5)
    assert all(p.candidate is not None and p.candidate.ok for p in pairs)
