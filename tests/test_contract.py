"""The shared contract: records round-trip, keys share a hash tag, config errors name the field."""

from __future__ import annotations

import json

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from cli.settings import load_settings
from tunegate import keys
from tunegate.errors import ConfigError, RecordError
from tunegate.records import (
    Arm,
    ArmResult,
    Endpoint,
    HumanLabel,
    Pair,
    Winner,
    decode_human_label,
    decode_pair,
    encode,
    trusted,
)
from tunegate.responses import parse_response


def _pair(text: str = "hi") -> Pair:
    body = (
        '{"choices":[{"index":0,"message":{"role":"assistant","content":%s},'
        '"finish_reason":"stop"}]}'
    )

    arm = ArmResult(upstream="u", model="m", status=200, body=body % json.dumps(text))
    return Pair(
        id="p1",
        experiment="exp",
        endpoint=Endpoint.CHAT,
        request="{}",
        served_arm=Arm.CONTROL,
        control=arm,
        candidate=arm,
    )


@given(st.text())
def test_pair_round_trips_through_stream_fields(text: str) -> None:
    pair = _pair(text)
    fields = {k.encode(): v for k, v in encode(pair).items()}
    back = decode_pair(fields)
    assert back == pair
    assert back.candidate is not None
    assert parse_response(back.candidate).text == text


@given(st.sampled_from(list(Winner)), st.text(max_size=200), st.text(max_size=2000))
def test_human_label_round_trips_and_refuses_what_it_does_not_know(
    winner: Winner, reviewer: str, note: str
) -> None:
    label = HumanLabel(pair_id="p1", experiment="exp", winner=winner, reviewer=reviewer, note=note)
    fields = {k.encode(): v for k, v in encode(label).items()}
    assert decode_human_label(fields) == label
    bad = {**fields, b"json": fields[b"json"].replace(f'"{winner.value}"'.encode(), b'"both"')}
    with pytest.raises(RecordError):
        decode_human_label(bad)


def test_bad_entries_raise_record_error() -> None:
    with pytest.raises(RecordError):
        decode_pair({b"v": b"1", b"json": b"{"})
    with pytest.raises(RecordError):
        decode_pair({b"v": b"99", b"json": b"{}"})
    with pytest.raises(RecordError):
        decode_pair({b"json": b"{}"})


def test_sse_bodies_parse_to_text_and_tool_calls() -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1",'
        '"function":{"name":"f","arguments":"{\\"a\\""}}]}}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        '"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}\n\n'
        "data: [DONE]\n\n"
    )
    parsed = parse_response(ArmResult(upstream="u", model="m", stream=True, body=body))
    assert parsed.text == "Hello"
    assert parsed.tool_calls[0][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert parsed.finish_reasons == ["tool_calls"]


def test_keys_of_one_experiment_share_a_cluster_slot(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    names = [keys.pairs("e"), keys.verdicts("e"), keys.dead("e"), keys.state("e"), keys.audit("e"),
             keys.labels("e")]  # fmt: skip
    assert all("{e}" in n for n in names)
    with pytest.raises(ValueError, match="braces"):
        keys.pairs("a{b}")
    client.close()


def test_invalid_config_names_the_field(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "upstreams:\n  base: {base_url: 'http://x/v1'}\n"
        "experiments:\n  - name: m\n    control: {upstream: base}\n    candidate: {upstream: ft}\n"
    )
    with pytest.raises(
        ConfigError, match=r"experiments\[0\]\.candidate\.upstream: unknown upstream"
    ):
        load_settings(path)
    path.write_text(
        "upstreams:\n  base: {base_url: 'http://x/v1'}\n"
        "experiments:\n  - name: m\n    ab_weight: 2\n    control: {upstream: base}\n"
        "    candidate: {upstream: base}\n"
    )
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.ab_weight"):
        load_settings(path)


def test_env_overrides_yaml_and_flags_override_env(tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("proxy:\n  port: 9000\n  mirror: {max_inflight: 10}\n")
    assert load_settings(path).proxy.port == 9000
    monkeypatch.setenv("TUNEGATE_PROXY__MIRROR__MAX_INFLIGHT", "64")
    settings = load_settings(path)
    assert settings.proxy.mirror.max_inflight == 64
    assert settings.proxy.port == 9000
    assert load_settings(path, log_level="debug").log_level == "debug"


def test_secrets_are_read_from_the_named_variable_and_never_shown(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    path = tmp_path / "c.yaml"
    path.write_text("upstreams:\n  base: {base_url: 'http://x/v1', api_key_env: MY_KEY}\n")
    settings = load_settings(path)
    key = settings.upstreams["base"].api_key
    assert key is not None and key.get_secret_value() == "sk-secret-123"
    assert "sk-secret-123" not in repr(settings)
    assert "sk-secret-123" not in settings.model_dump_json()


def test_embeddings_parse_from_floats_and_from_the_sdks_base64() -> None:
    import base64
    from array import array

    vector = [0.25, -1.5, 3.0]
    encoded = base64.b64encode(array("f", vector).tobytes()).decode()
    for embedding in (vector, encoded):
        body = json.dumps({"data": [{"index": 0, "embedding": embedding}], "usage": {}})
        parsed = parse_response(ArmResult(upstream="u", model="m", status=200, body=body))
        assert parsed.embeddings == [vector]
    bad = json.dumps({"data": [{"embedding": "not base64!"}]})
    with pytest.raises(RecordError):
        parse_response(ArmResult(upstream="u", model="m", status=200, body=bad))


def _every_field(model: type[ArmResult] | type[Pair]) -> dict[str, object]:
    """A value for every field of ``model``: its default, or one of its exact type."""
    arm = ArmResult(upstream="u", model="m", status=200, body="{}", latency_s=0.5)
    given = {"upstream": "u", "model": "m", "id": "p1", "experiment": "exp",
             "endpoint": Endpoint.CHAT, "request": "{}", "served_arm": Arm.CANDIDATE,
             "control": arm, "time": 12.5}  # fmt: skip
    return {
        name: given[name] if name in given else field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
    }


@pytest.mark.parametrize("model", [ArmResult, Pair])
def test_trusted_builds_what_model_construct_builds(model: type[ArmResult] | type[Pair]) -> None:
    assert not model.__pydantic_post_init__ and not model.__private_attributes__
    values = _every_field(model)
    built = trusted(model, **values)
    reference = model.model_construct(**values)  # type: ignore[arg-type]  # values by name
    assert built == reference and type(built) is model
    assert built.model_fields_set == reference.model_fields_set == set(model.model_fields)
    assert built.model_dump_json() == reference.model_dump_json()
    if isinstance(built, Pair) and isinstance(reference, Pair):
        assert encode(built) == encode(reference)  # the stream fields, outcome included
    assert built.model_extra is None and built.__pydantic_private__ is None
    field = "category" if model is Pair else "ttft_s"
    setattr(built, field, None)  # assignment works as on a validated record
    assert field in built.model_fields_set


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_trusted_refuses_anything_but_every_field(change: str) -> None:
    values = _every_field(ArmResult)
    if change == "missing":
        del values["ttft_s"]
    else:
        values["colour"] = "red"
    with pytest.raises(TypeError, match="ttft_s" if change == "missing" else "colour"):
        trusted(ArmResult, **values)
