"""A/B through the proxy, the admin API's state changes, and the feedback endpoint."""

from __future__ import annotations

from typing import Any, cast

import httpx
import openai
import pytest
import redis
from scipy.stats import binomtest

from tests.proxy.conftest import ADMIN_TOKEN, Proxy, experiment, sdk, wait_for_pairs, wait_until
from tunegate import keys
from tunegate.records import Arm, AuditEntry, decode_feedback
from tunegate.state import read_audit

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def ask(client: openai.OpenAI, model: str, header_user: str | None = None, **kw: Any) -> str:
    headers = {"x-user-id": header_user} if header_user else {}
    out = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "q"}], extra_headers=headers, **kw
    )
    return str(out.choices[0].message.content)


@pytest.fixture(name="sdk")
def sdk_fixture(proxy: Proxy) -> openai.OpenAI:
    return sdk(proxy.base_url)


def test_ab_is_sticky_per_user_header_and_splits_by_weight(sdk: openai.OpenAI, redis_url: str):
    users = [f"user-{i}" for i in range(60)]
    first = {u: ask(sdk, "exp-ab", u) for u in users}
    again = {u: ask(sdk, "exp-ab", u) for u in reversed(users)}
    assert first == again
    candidates = sum(v == "Hello from candidate." for v in first.values())
    assert binomtest(candidates, len(users), 0.5).pvalue > 0.001
    pairs = wait_for_pairs(redis_url, "exp-ab", 120)
    assert all(p.user_key_hash for p in pairs)
    # the served arm in the pair matches what the user got
    by_user = {p.user_key_hash: p.served_arm for p in pairs}
    assert sum(a is Arm.CANDIDATE for a in by_user.values()) == candidates


def test_ab_sticky_on_openai_user_field_with_metadata_extractors(sdk: openai.OpenAI, redis_url):
    for i in range(10):
        answers = {ask(sdk, "exp-user", user=f"u{i}") for _ in range(3)}
        assert len(answers) == 1
    out = sdk.chat.completions.create(
        model="exp-user",
        messages=[{"role": "user", "content": "2+2"}],
        user="u0",
        metadata={"category": "math", "reference": "4"},
        store=True,
    )
    assert out.choices
    pairs = wait_for_pairs(redis_url, "exp-user", 31)
    assert (pairs[-1].category, pairs[-1].reference) == ("math", "4")


def test_admin_requires_token(proxy: Proxy, proxy_factory):
    assert httpx.get(f"{proxy.url}/admin/experiments").status_code == 401
    bad = httpx.get(f"{proxy.url}/admin/experiments", headers={"authorization": "Bearer no"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    with proxy_factory([experiment("exp")]) as no_token:
        disabled = httpx.get(f"{no_token.url}/admin/experiments", headers=AUTH)
        assert disabled.status_code == 503 and "disabled" in disabled.json()["error"]["message"]


def test_admin_reads_and_changes_state(proxy: Proxy, sdk: openai.OpenAI, redis_url: str):
    listed = httpx.get(f"{proxy.url}/admin/experiments", headers=AUTH).json()["experiments"]
    assert [e["name"] for e in listed] == [e.name for e in proxy.settings.experiments]
    one = httpx.get(f"{proxy.url}/admin/experiments/exp-shadow", headers=AUTH).json()
    assert one["state"]["stage"] == "shadow" and one["state"]["version"] == 0
    assert one["config"]["candidate"]["model"] == "cand-model"
    assert ask(sdk, "exp-shadow") == "Hello from control."

    put = httpx.put(
        f"{proxy.url}/admin/experiments/exp-shadow/state",
        json={"stage": "promoted", "reason": "looks good", "expected_version": 0},
        headers=AUTH,
    )
    assert put.status_code == 200, put.text
    assert put.json()["state"]["version"] == 1 and put.json()["state"]["updated_by"] == "admin-api"
    assert ask(sdk, "exp-shadow") == "Hello from candidate."

    stale = httpx.put(
        f"{proxy.url}/admin/experiments/exp-shadow/state",
        json={"stage": "shadow", "reason": "undo", "expected_version": 0},
        headers=AUTH,
    )
    assert stale.status_code == 409 and stale.json()["error"]["param"] == "expected_version"
    for body in ({"stage": "bogus", "reason": "x"}, {"stage": "ab", "ab_weight": 2, "reason": "x"},
                 {"stage": "ab"}):  # fmt: skip
        bad = httpx.put(f"{proxy.url}/admin/experiments/exp-shadow/state", json=body, headers=AUTH)
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.get(f"{proxy.url}/admin/experiments/nope", headers=AUTH)
    assert missing.status_code == 404

    import asyncio

    import redis.asyncio as aioredis

    async def audit() -> list[AuditEntry]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await read_audit(client, "exp-shadow")
        finally:
            await client.aclose()

    [entry] = asyncio.run(audit())
    assert entry.actor == "admin-api" and entry.reason == "looks good"


def test_state_written_elsewhere_is_picked_up(proxy: Proxy, sdk: openai.OpenAI, redis_url: str):
    client = redis.Redis.from_url(redis_url)
    client.hset(keys.state("exp-paused"), mapping={
        "stage": "promoted", "ab_weight": "0", "mirror_rate": "1", "version": "5",
        "updated_by": "controller", "updated_at": "0",
    })  # fmt: skip
    client.close()
    wait_until(lambda: ask(sdk, "exp-paused") == "Hello from candidate.", what="state refresh")


def test_feedback_records_the_served_arm(proxy: Proxy, sdk: openai.OpenAI, redis_url: str):
    raw = sdk.chat.completions.with_raw_response.create(
        model="exp-promoted", messages=[{"role": "user", "content": "q"}],
        extra_headers={"x-user-id": "fan"},
    )  # fmt: skip
    pair_id = raw.headers["x-tunegate-pair-id"]
    wait_for_pairs(redis_url, "exp-promoted", 1)
    posted = httpx.post(
        f"{proxy.base_url}/feedback",
        json={"pair_id": pair_id, "model": "exp-promoted", "value": 1, "label": "thumbs_up"},
        headers={"x-user-id": "fan"},
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["arm"] == "candidate"
    client = redis.Redis.from_url(redis_url)
    [(_, fields)] = cast(
        list[tuple[bytes, dict[bytes, bytes]]], client.xrange(keys.feedback("exp-promoted"))
    )
    client.close()
    record = decode_feedback(fields)
    assert (record.pair_id, record.arm, record.value, record.label) == (
        pair_id, Arm.CANDIDATE, 1.0, "thumbs_up",
    )  # fmt: skip
    assert record.user_key_hash is not None
    assert proxy.metric("tunegate_feedback_total", experiment="exp-promoted", arm="candidate") >= 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"pair_id": "nope", "model": "exp-shadow", "value": 1}, 404),
        ({"pair_id": "x", "model": "not-an-experiment", "value": 1}, 404),
        ({"pair_id": "x", "model": "exp-shadow"}, 400),
        ({"pair_id": "x", "model": "exp-shadow", "value": "good"}, 400),
        ({"pair_id": "x", "model": "exp-shadow", "value": 1, "extra": 1}, 400),
    ],
)
def test_feedback_rejects_bad_requests(proxy: Proxy, body: dict[str, object], status: int):
    response = httpx.post(f"{proxy.base_url}/feedback", json=body)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_feedback_malformed_json_is_400(proxy: Proxy):
    response = httpx.post(
        f"{proxy.base_url}/feedback", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
