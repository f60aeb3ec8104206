"""Experiments as live objects in Redis: two replicas apply every change within a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import redis

from tests.proxy.conftest import ADMIN_TOKEN, Proxy, experiment, sdk
from tunegate import keys

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
# polling every 30 s: whatever a replica applies within a second came by pub/sub
LIVE = {"experiments_from": "redis", "state_refresh_seconds": 30, "admin_token": ADMIN_TOKEN}


def _within(seconds: float, check: Callable[[], bool]) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _versions(proxy: Proxy) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{proxy.url}/readyz").json()
    return body["experiments"]  # type: ignore[no-any-return]


def _ask(proxy: Proxy, model: str) -> str:
    out = sdk(proxy.base_url).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "q"}]
    )
    return str(out.choices[0].message.content)


def test_two_replicas_apply_a_state_change_within_a_second(proxy_factory: Any) -> None:
    with (
        proxy_factory([experiment("live")], **LIVE) as a,
        proxy_factory([experiment("live")], **LIVE) as b,
    ):
        assert _versions(b)["live"] == {"definition_version": 1, "state_version": 0}
        assert _ask(b, "live") == "Hello from control."
        body = {"stage": "promoted", "ab_weight": 1.0, "reason": "wins"}
        put = httpx.put(f"{a.url}/admin/experiments/live/state", json=body, headers=ADMIN)
        assert put.status_code == 200
        took = _within(1.0, lambda: _versions(b)["live"]["state_version"] == 1)
        assert _ask(b, "live") == "Hello from candidate."
        gauge = b.metric("tunegate_experiment_served_version", experiment="live", kind="state")
        assert gauge == 1.0, took


def test_create_edit_delete_at_run_time_reach_the_other_replica(proxy_factory: Any) -> None:
    with proxy_factory([experiment("seeded")], **LIVE) as a, proxy_factory([], **LIVE) as b:
        assert "seeded" in _versions(b)  # the first replica's file seeded it for both
        new = experiment("made", stage="promoted")
        created = httpx.post(f"{a.url}/admin/experiments", json=new, headers=ADMIN)
        assert created.status_code == 201 and created.json()["definition_version"] == 1
        again = httpx.post(f"{a.url}/admin/experiments", json=new, headers=ADMIN)
        assert again.status_code == 409
        _within(1.0, lambda: "made" in _versions(b))
        assert _ask(b, "made") == "Hello from candidate."

        edited = {**new, "stage": "shadow"}
        change = {"definition": edited, "expected_version": 1}
        put = httpx.put(f"{a.url}/admin/experiments/made", json=change, headers=ADMIN)
        assert put.status_code == 200 and put.json()["definition_version"] == 2
        stale = httpx.put(f"{b.url}/admin/experiments/made", json=change, headers=ADMIN)
        assert stale.status_code == 409 and stale.json()["error"]["param"] == "expected_version"
        _within(1.0, lambda: _versions(b)["made"]["definition_version"] == 2)
        assert _ask(b, "made") == "Hello from control."

        gone = httpx.delete(f"{b.url}/admin/experiments/made?expected_version=1", headers=ADMIN)
        assert gone.status_code == 409
        gone = httpx.delete(f"{b.url}/admin/experiments/made?expected_version=2", headers=ADMIN)
        assert gone.status_code == 200
        _within(1.0, lambda: "made" not in _versions(a))
        try:
            _ask(a, "made")
            raise AssertionError("a deleted experiment still answered")
        except openai.NotFoundError:
            pass
        listed = httpx.get(f"{a.url}/admin/experiments", headers=ADMIN).json()["experiments"]
        assert [e["name"] for e in listed] == ["seeded"]


def test_hostile_definitions_are_400_and_file_mode_refuses_crud(proxy_factory: Any) -> None:
    with proxy_factory([experiment("seeded")], **LIVE) as a:
        url = f"{a.url}/admin/experiments"
        bad: object
        for bad in (
            experiment("x", control={"upstream": "nowhere"}),
            experiment("x", ab_weight=2),
            experiment("{x}"),
            {**experiment("x"), "surprise": 1},
            [],
        ):
            got = httpx.post(url, json=bad, headers=ADMIN)
            assert got.status_code == 400, (bad, got.text)
            assert got.json()["error"]["type"] == "invalid_request_error"
        renamed = {"definition": experiment("other"), "expected_version": 1}
        assert httpx.put(f"{url}/seeded", json=renamed, headers=ADMIN).status_code == 400
    file_mode = {"admin_token": ADMIN_TOKEN, "experiments_from": "file"}
    with proxy_factory([experiment("seeded")], **file_mode) as f:
        got = httpx.post(f"{f.url}/admin/experiments", json=experiment("n"), headers=ADMIN)
        assert got.status_code == 409 and "config file" in got.json()["error"]["message"]


def test_redis_wins_over_the_file_and_a_deleted_experiment_is_not_seeded_again(
    proxy_factory: Any,
) -> None:
    with proxy_factory([experiment("kept"), experiment("dropped")], **LIVE) as a:
        change = {"definition": experiment("kept", stage="promoted"), "expected_version": 1}
        assert httpx.put(f"{a.url}/admin/experiments/kept", json=change,
                         headers=ADMIN).status_code == 200  # fmt: skip
        url = f"{a.url}/admin/experiments/dropped?expected_version=1"
        assert httpx.delete(url, headers=ADMIN).status_code == 200
    with proxy_factory([experiment("kept"), experiment("dropped")], **LIVE) as restarted:
        assert set(_versions(restarted)) == {"kept"}
        assert _ask(restarted, "kept") == "Hello from candidate."
    # the file itself changes: the restart applies it as the next version (last-applied)
    with proxy_factory([experiment("kept", stage="shadow", mirror_rate=0.5)], **LIVE) as edited:
        assert _versions(edited)["kept"]["definition_version"] == 3
        assert _ask(edited, "kept") == "Hello from control."


def test_replicas_with_different_files_both_seed_again_after_a_wipe(
    proxy_factory: Any, redis_url: str
) -> None:
    fast = {"experiments_from": "redis", "state_refresh_seconds": 0.05}
    with (
        proxy_factory([experiment("one")], **fast) as a,
        proxy_factory([experiment("two")], **fast) as b,
    ):
        _within(2.0, lambda: set(_versions(a)) == set(_versions(b)) == {"one", "two"})
        raw = redis.Redis.from_url(redis_url)
        try:
            # Redis lost everything (a restart without persistence), and a third replica with
            # another file has seeded it again before these two looked
            with raw.pipeline(transaction=True) as pipe:
                pipe.flushall()
                pipe.sadd(keys.SEEDED, "three")
                pipe.execute()
        finally:
            raw.close()
        # each replica finds its own file's markers gone, not merely the other's: both re-seed
        _within(2.0, lambda: set(_versions(a)) == set(_versions(b)) == {"one", "two"})
        assert _ask(a, "two") == "Hello from control." and _ask(b, "one") == "Hello from control."
