"""The proxy's small parts on their own: extraction, stream capture, arm bodies, import hygiene."""

from __future__ import annotations

import json

import orjson
import pytest

from proxy.errors import BadRequest, UpstreamTimeout
from proxy.extract import experiment_facts, forward_headers, parse_body
from proxy.routing import hash_key
from proxy.runtime import ArmTarget
from proxy.streaming import StreamCapture
from tunegate.experiments import ExperimentConfig

CFG = ExperimentConfig.model_validate(
    {"name": "e", "control": {"upstream": "a"}, "candidate": {"upstream": "b"}}
)


def test_parse_body_rejects_non_objects():
    assert parse_body(b'{"model": "m"}') == {"model": "m"}
    for raw in (b"", b"[]", b"{", b'"text"'):
        with pytest.raises(BadRequest):
            parse_body(raw)


def test_facts_from_headers_and_metadata():
    headers = {
        "x-user-id": "alice",
        "x-tunegate-category": "math",
        "x-tunegate-reference": "42",
        "x-tunegate-label-task": "qa",
        "x-tunegate-label-": "ignored",
    }
    facts = experiment_facts(CFG, {}, headers)
    assert facts.user_key_hash == hash_key("alice")
    assert (facts.category, facts.reference, facts.labels) == ("math", "42", {"task": "qa"})
    meta_cfg = CFG.model_copy(
        update={
            "sticky_key": "user",
            "category_from": "metadata:cat",
            "reference_from": "metadata:ref",
        }
    )
    body = {"user": "bob", "metadata": {"cat": "code", "ref": 7}}
    facts = experiment_facts(meta_cfg, body, {})
    assert (facts.user_key_hash, facts.category, facts.reference) == (hash_key("bob"), "code", "7")
    none_cfg = CFG.model_copy(update={"sticky_key": "none", "category_from": "none"})
    facts = experiment_facts(none_cfg, body, headers)
    assert facts.user_key_hash is None and facts.category is None


def test_forward_headers_keeps_credentials_drops_ours_and_hop_by_hop():
    out = forward_headers({
        "authorization": "Bearer k", "api-key": "a", "host": "x", "content-length": "3",
        "connection": "keep-alive", "x-tunegate-category": "c", "openai-organization": "o",
        "accept-encoding": "gzip",
    })  # fmt: skip
    assert out == {
        "authorization": "Bearer k", "api-key": "a", "openai-organization": "o",
        "content-type": "application/json",
    }  # fmt: skip


def test_stream_capture_bounds_the_body_and_times_chunks():
    capture = StreamCapture(max_bytes=10, started_at=0.0)
    capture.feed(b"abcdef", now=0.1)
    capture.feed(b"", now=0.15)  # empty chunks are not chunks
    capture.feed(b"ghijkl", now=0.3)
    capture.feed(b"mn", now=0.4)
    assert capture.body == b"abcdefghij" and capture.truncated
    assert capture.ttft_s == pytest.approx(0.1)
    assert capture.itl_mean_s == pytest.approx(0.15)
    assert capture.itl_max_s == pytest.approx(0.2)
    empty = StreamCapture(max_bytes=10, started_at=0.0)
    assert (empty.ttft_s, empty.itl_mean_s, empty.body) == (None, None, b"")


def test_arm_target_renames_only_when_asked():
    raw = b'{"model": "pub", "messages": [], "extra": {"k": 1}}'
    body = orjson.loads(raw)
    same = ArmTarget(upstream=None, rename=None, timeout_s=1)  # type: ignore[arg-type]
    assert same.body(body, raw, "pub") == (raw, "pub")
    renamed, model = ArmTarget(upstream=None, rename="ft", timeout_s=1).body(body, raw, "pub")  # type: ignore[arg-type]
    assert model == "ft" and json.loads(renamed) == {**body, "model": "ft"}


def test_error_bodies_are_openai_shaped():
    assert json.loads(UpstreamTimeout("slow").body()) == {
        "error": {"message": "slow", "type": "upstream_error", "param": None,
                  "code": "upstream_timeout"}
    }  # fmt: skip


async def test_a_full_in_process_candidate_queue_is_recorded_as_overloaded() -> None:
    from proxy.errors import Overloaded
    from proxy.legs import call_shadow

    class FullQueue:
        """An in-process upstream whose batcher queue is full (what local/batcher.py raises)."""

        name = "local-candidate"

        async def send(self, method, path, body, headers, timeout_s, *, shadow=False):
            raise Overloaded("queue full", retry_after=2.0)

    result = await call_shadow(
        FullQueue(),  # type: ignore[arg-type]
        "/chat/completions",
        b"{}",
        {},
        model="m",
        stream=False,
        timeout_s=1.0,
        max_bytes=1024,
    )
    assert (result.status, result.error) == (429, "overloaded")
    assert not result.ok
