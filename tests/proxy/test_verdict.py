"""GET /admin/experiments/{name}/verdict on a real proxy and Redis, driven with each decision kind.

The decisions are written to the decisions stream with the records codec, as the controller
writes them (one test lets the real Controller write its own). The shipped Argo web-provider
template and Flagger's webhook commands are then read or run against this proxy.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from analysis.controller import Controller
from tests.deploy.decisions import EXPECTED, KINDS, decision
from tests.deploy.rollouts import argo_measurement, examples
from tests.proxy.conftest import ADMIN_TOKEN, Doubles, Proxy, build_settings, experiment, run_proxy
from tunegate import keys
from tunegate.records import Decision, encode
from tunegate.redis import RedisSettings, connect

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
RESULT_OF_MEASUREMENT = {
    "Successful": "success",
    "Failed": "failure",
    "Inconclusive": "inconclusive",
}
NAMES = [f"exp-{kind}" for kind in KINDS]


@pytest.fixture(scope="module")
def _module_proxy(redis_server: Any, doubles: Doubles) -> Iterator[Proxy]:
    experiments = [experiment(name) for name in [*NAMES, "exp-stale", "exp-none"]]
    # the file's definitions: a proxy that outlives the per-test flushes would otherwise seed its
    # experiments into the Redis of whatever test runs next (tests/proxy/conftest.py says more)
    settings = build_settings(redis_server.url, doubles.urls, experiments, experiments_from="file")
    settings.proxy.admin_token = SecretStr(ADMIN_TOKEN)
    with run_proxy(settings) as started:
        yield started


@pytest.fixture
def verdict_proxy(_module_proxy: Proxy, redis_url: str) -> Proxy:
    """One proxy for the module, on a Redis flushed for each test."""
    return _module_proxy


def _record(redis_url: str, made: Decision) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.xadd(keys.decisions(made.experiment), encode(made))  # type: ignore[arg-type]  # redis-py's field type is invariant
    finally:
        client.close()


def _verdict(proxy: Proxy, name: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{proxy.url}/admin/experiments/{name}/verdict", params=params, headers=AUTH, timeout=5
    )


def _web_template() -> dict[str, Any]:
    (found,) = [e for e in examples() if e.resource["metadata"]["name"] == "tunegate-verdict-web"]
    (metric,) = found.resource["spec"]["metrics"]
    assert isinstance(metric, dict)
    return metric


def test_each_decision_kind_reads_as_its_result(verdict_proxy: Proxy, redis_url: str) -> None:
    for name, kind in zip(NAMES, KINDS, strict=True):
        _record(redis_url, decision(name, kind))
    metric = _web_template()
    assert metric["provider"]["web"]["jsonPath"] == "{$.result}"
    for name, kind in zip(NAMES, KINDS, strict=True):
        response = _verdict(verdict_proxy, name, max_age_seconds="600")
        assert response.status_code == 200, response.text
        body = response.json()
        expected = RESULT_OF_MEASUREMENT[EXPECTED[kind][0]]
        assert body["result"] == expected, (kind, body)
        assert body["code"] == {"success": 1, "failure": -1, "inconclusive": 0}[expected]
        assert body["action"] == kind
        assert body["experiment"] == name
        assert body["stale"] is False and 0 <= body["age_seconds"] < 60
        assert body["reason"] == f"generated {kind}"
        assert body["evidence"]["judge"]["n"] == 800
        assert body["guardrails"]["error_rate"] == ("breached" if kind == "roll_back" else "holds")
        assert body["guardrails"]["tokens"] == "unproven"
        # What Argo's web provider does: jsonPath {$.result}, then the template's conditions.
        assert argo_measurement(metric, body["result"]) == EXPECTED[kind][0]


def test_expect_answers_200_only_on_that_result(verdict_proxy: Proxy, redis_url: str) -> None:
    for name, kind in zip(NAMES, KINDS, strict=True):
        _record(redis_url, decision(name, kind))
    for name, kind in zip(NAMES, KINDS, strict=True):
        result = RESULT_OF_MEASUREMENT[EXPECTED[kind][0]]
        for expect in ("success", "failure", "inconclusive"):
            response = _verdict(verdict_proxy, name, expect=expect)
            if expect == result:
                assert response.status_code == 200, (kind, expect, response.text)
                assert response.json()["result"] == result
            else:
                assert response.status_code == 409, (kind, expect, response.text)
                error = response.json()["error"]
                assert error["param"] == "expect"
                assert f"is {result} (action {kind}), not {expect}" in error["message"]


def _flagger_commands() -> dict[str, str]:
    (canary,) = [e for e in examples() if e.kind == "Canary"]
    hooks = canary.resource["spec"]["analysis"]["webhooks"]
    # The load tester's blocking task: its answer is the command's exit status (a `cmd` task
    # would be queued and answered 202 whatever the verdict).
    assert {hook["metadata"]["type"] for hook in hooks} == {"bash"}
    return {hook["type"]: hook["metadata"]["cmd"] for hook in hooks}


def test_flagger_webhook_commands_gate_on_the_verdict(verdict_proxy: Proxy, redis_url: str) -> None:
    """The Canary's curl commands, run with `bash -c` as Flagger's load tester's bash task does."""
    commands = _flagger_commands()
    env = {"PATH": os.environ["PATH"], "TUNEGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    for name, kind in zip(NAMES, KINDS, strict=True):
        _record(redis_url, decision(name, kind))
        for hook, command in commands.items():
            local = command.replace(
                "http://tunegate-proxy.tunegate.svc:8080", verdict_proxy.url
            ).replace("/experiments/support-assistant/", f"/experiments/{name}/")
            done = subprocess.run(
                ["bash", "-c", local], env=env, capture_output=True, timeout=20, check=False
            )
            passes = EXPECTED[kind][2] if hook != "rollback" else not EXPECTED[kind][1]
            assert (done.returncode == 0) is passes, (kind, hook, done.returncode, done.stderr)
    wrong = {**env, "TUNEGATE_ADMIN_TOKEN": "wrong"}
    local = (
        commands["confirm-promotion"]
        .replace("http://tunegate-proxy.tunegate.svc:8080", verdict_proxy.url)
        .replace("/experiments/support-assistant/", "/experiments/exp-promote/")
    )
    done = subprocess.run(["bash", "-c", local], env=wrong, capture_output=True, timeout=20)
    assert done.returncode == 22 and b"401" in done.stderr  # curl -f: HTTP error


def test_latest_decision_wins_and_stale_reads_inconclusive(
    verdict_proxy: Proxy, redis_url: str
) -> None:
    assert _verdict(verdict_proxy, "exp-stale").json()["result"] == "inconclusive"
    _record(redis_url, decision("exp-stale", "roll_back", age_seconds=7200))
    _record(redis_url, decision("exp-stale", "promote", age_seconds=3600))
    fresh_enough = _verdict(verdict_proxy, "exp-stale", max_age_seconds="7200").json()
    assert (fresh_enough["result"], fresh_enough["action"]) == ("success", "promote")
    assert 3590 < fresh_enough["age_seconds"] < 3700
    stale = _verdict(verdict_proxy, "exp-stale", max_age_seconds="600").json()
    assert (stale["result"], stale["code"], stale["stale"]) == ("inconclusive", 0, True)
    assert stale["action"] == "promote"  # the decision is still shown, only not acted on
    waiting = _verdict(verdict_proxy, "exp-stale", expect="success", max_age_seconds="600")
    assert waiting.status_code == 409


def test_no_decision_yet_is_inconclusive(verdict_proxy: Proxy) -> None:
    body = _verdict(verdict_proxy, "exp-none").json()
    assert body == {
        "experiment": "exp-none",
        "result": "inconclusive",
        "code": 0,
        "action": None,
        "reason": "No decision has been recorded yet: the controller has not run.",
        "age_seconds": None,
        "stale": False,
        "guardrails": {},
    }


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/admin/experiments/exp-none/verdict", {}, 401),
        ("/admin/experiments/exp-none/verdict", {"authorization": "Bearer nope"}, 401),
        ("/admin/experiments/nope/verdict", AUTH, 404),
        ("/admin/experiments/exp-none/verdict?expect=maybe", AUTH, 400),
        ("/admin/experiments/exp-none/verdict?max_age_seconds=0", AUTH, 400),
        ("/admin/experiments/exp-none/verdict?max_age_seconds=soon", AUTH, 400),
    ],
)
def test_bad_requests_get_an_openai_error(
    verdict_proxy: Proxy, path: str, headers: dict[str, str], status: int
) -> None:
    response = httpx.get(f"{verdict_proxy.url}{path}", headers=headers, timeout=5)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_an_unreadable_decision_is_503_with_the_reason(verdict_proxy: Proxy, redis_url: str):
    client = redis.Redis.from_url(redis_url)
    client.xadd(keys.decisions("exp-none"), {"data": b"{not json"})
    client.close()
    response = _verdict(verdict_proxy, "exp-none")
    assert response.status_code == 503
    assert "latest decision of 'exp-none' is unreadable" in response.json()["error"]["message"]


async def test_the_real_controller_writes_what_the_endpoint_reads(
    verdict_proxy: Proxy, redis_url: str
) -> None:
    """No pairs yet: the controller's burn-in decision is continue, read as inconclusive."""
    async with connect(RedisSettings(url=redis_url)) as client:
        controller = Controller(verdict_proxy.settings.experiments, client)
        made = await controller.step("exp-continue", apply=False)
    assert made.action.value == "continue"
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(
            f"{verdict_proxy.url}/admin/experiments/exp-continue/verdict", headers=AUTH
        )
    body = response.json()
    assert (body["result"], body["action"], body["time"]) == ("inconclusive", "continue", made.time)
    assert body["samples_needed"] == made.samples_needed
