"""The admin API: every route against each token, versioned writes, the operator's actions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.proxy.conftest import ADMIN_TOKEN, READ_TOKEN, Proxy
from tunegate.decisions import record_decision
from tunegate.records import Action, Decision, Stage

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
READ = {"authorization": f"bearer {READ_TOKEN}"}
WRONG = {"authorization": f"Bearer {ADMIN_TOKEN}x"}

# a valid body for each write route (the route's own checks may still answer 409)
BODIES: dict[str, dict[str, Any]] = {
    "/admin/experiments/{name}/state": {"stage": "ab", "ab_weight": 0.2, "reason": "t"},
    "/admin/experiments/{name}/approve": {},
    "/admin/experiments/{name}/reject": {"reason": "no"},
}
# the shared proxy takes its definitions from the file: the CRUD routes answer 409 there
DEFINITION = {"name": "exp-new", "control": {"upstream": "control"},
              "candidate": {"upstream": "candidate"}}  # fmt: skip
BODIES |= {
    "/admin/experiments": DEFINITION,
    "/admin/experiments/{name}": {"definition": DEFINITION, "expected_version": 1},
}


EXPECTED = {
    ("GET", "/admin/experiments"),
    ("GET", "/admin/experiments/{name}"),
    ("PUT", "/admin/experiments/{name}/state"),
    ("GET", "/admin/experiments/{name}/status"),
    ("GET", "/admin/experiments/{name}/decisions"),
    ("GET", "/admin/experiments/{name}/audit"),
    ("GET", "/admin/experiments/{name}/offline"),
    ("GET", "/admin/experiments/{name}/verdict"),
    ("POST", "/admin/experiments"),
    ("PUT", "/admin/experiments/{name}"),
    ("DELETE", "/admin/experiments/{name}"),
    *(
        ("POST", f"/admin/experiments/{{name}}/{action}")
        for action in ("approve", "reject", "pause", "resume", "promote", "rollback")
    ),
}


def _admin_routes(proxy: Proxy) -> list[tuple[str, str]]:
    """Every admin route, as the OpenAPI schema documents it."""
    schema = httpx.get(f"{proxy.url}/openapi.json").json()
    found = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/admin")
        for method in operations
    }
    assert found >= EXPECTED, EXPECTED - found
    return sorted(found)


def test_every_admin_route_with_no_wrong_read_and_admin_token(proxy: Proxy) -> None:
    client = httpx.Client(base_url=proxy.url, timeout=10)

    def _call(method: str, path: str, headers: dict[str, str]) -> httpx.Response:
        body = BODIES.get(path, {"reason": "by hand"}) if method != "GET" else None
        query = {"expected_version": "1"} if method == "DELETE" else None
        return client.request(method, path.replace("{name}", "exp-shadow"), json=body,
                              params=query, headers=headers)  # fmt: skip

    for method, path in _admin_routes(proxy):
        for headers in ({}, WRONG, {"authorization": ADMIN_TOKEN}):
            denied = _call(method, path, headers)
            assert denied.status_code == 401, (method, path, denied.text)
            assert denied.json()["error"]["type"] == "authentication_error"
            assert ADMIN_TOKEN not in denied.text
        read = _call(method, path, READ)
        if method == "GET":
            assert read.status_code == 200, (path, read.text)
        else:
            assert read.status_code == 403, (method, path, read.text)
            assert read.json()["error"]["type"] == "permission_error"
        admin = _call(method, path, ADMIN)
        assert admin.status_code in (200, 409), (method, path, admin.text)
    client.close()


def test_the_openapi_schema_documents_the_bearer_tokens(proxy: Proxy) -> None:
    schema = httpx.get(f"{proxy.url}/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    audit = schema["paths"]["/admin/experiments/{name}/audit"]["get"]
    assert audit["security"] == [{"HTTPBearer": []}]


async def _put(client: httpx.AsyncClient, url: str, version: int, weight: float) -> int:
    body = {"stage": "ab", "ab_weight": weight, "reason": "race", "expected_version": version}
    return (await client.put(url, json=body, headers=ADMIN)).status_code


def test_concurrent_updates_on_one_version_one_wins_the_rest_409(proxy: Proxy) -> None:
    url = f"{proxy.url}/admin/experiments/exp-shadow/state"

    async def race() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            return list(await asyncio.gather(*(_put(client, url, 0, w / 10) for w in range(1, 9))))

    codes = asyncio.run(race())
    assert sorted(codes) == [200] + [409] * 7, codes
    audit = httpx.get(f"{url[:-6]}/audit", headers=READ).json()["audit"]
    assert [a["after"]["version"] for a in audit] == [1]


def _post(proxy: Proxy, action: str, **body: Any) -> httpx.Response:
    url = f"{proxy.url}/admin/experiments/exp-ab/{action}"
    return httpx.post(url, json=body, headers=ADMIN, timeout=10)


def test_pause_resume_promote_rollback_are_audited_with_who_and_why(proxy: Proxy) -> None:
    paused = _post(proxy, "pause", reason="incident 42", actor="alice")
    assert paused.status_code == 200 and paused.json()["state"]["stage"] == "paused"
    assert _post(proxy, "pause", reason="again").status_code == 409
    resumed = _post(proxy, "resume", reason="fixed", expected_version=1)
    assert resumed.json()["state"] == resumed.json()["state"] | {"stage": "ab", "ab_weight": 0.5}
    assert _post(proxy, "resume", reason="x").status_code == 409  # not paused
    assert _post(proxy, "promote", reason="x", expected_version=1).status_code == 409  # stale
    assert _post(proxy, "promote", reason="wins").json()["state"]["ab_weight"] == 1.0
    assert _post(proxy, "rollback", reason="oops").json()["state"]["stage"] == "rolled_back"
    audit = httpx.get(f"{proxy.url}/admin/experiments/exp-ab/audit?count=2", headers=READ)
    entries = audit.json()["audit"]
    assert [(e["actor"], e["reason"]) for e in entries] == [
        ("admin-api", "wins"),
        ("admin-api", "oops"),
    ]
    first = httpx.get(f"{proxy.url}/admin/experiments/exp-ab/audit", headers=READ).json()
    assert first["audit"][0]["actor"] == "admin-api:alice"
    assert _post(proxy, "pause", reason="x", actor="not allowed!").status_code == 400
    assert _post(proxy, "pause", reason="").status_code == 400
    assert httpx.post(f"{proxy.url}/admin/experiments/nope/pause", json={"reason": "x"},
                      headers=ADMIN).status_code == 404  # fmt: skip


def _waiting(name: str) -> Decision:
    return Decision(
        experiment=name,
        action=Action.START_AB,
        stage_before=Stage.SHADOW,
        stage_after=Stage.AB,
        weight_after=0.01,
        reason="Judge win rate clears the bar.",
        needs_approval=True,
        evidence={"pairs": 400},
    )


def test_approve_applies_the_waiting_decision_and_reject_refuses_it(
    proxy: Proxy, redis_url: str
) -> None:
    async def seed(decision: Decision) -> None:
        client = aioredis.Redis.from_url(redis_url)
        await record_decision(client, decision)
        await client.aclose()

    base = f"{proxy.url}/admin/experiments/exp-shadow"
    assert _post_to(base, "approve").status_code == 409  # nothing waits
    asyncio.run(seed(_waiting("exp-shadow")))
    status = httpx.get(f"{base}/status", headers=READ).json()
    assert status["waits_for_approval"] and status["latest_decision"]["evidence"] == {"pairs": 400}
    approved = _post_to(base, "approve", actor="bob")
    assert approved.status_code == 200 and approved.json()["applied"] is True
    state = httpx.get(base, headers=READ).json()["state"]
    assert (state["stage"], state["ab_weight"], state["updated_by"]) == (
        "ab",
        0.01,
        "admin-api:bob",
    )
    assert _post_to(base, "approve").status_code == 409  # applied once, never twice
    asyncio.run(seed(_waiting("exp-shadow")))  # made from shadow, but the state is ab now
    assert _post_to(base, "approve").status_code == 409
    rejected = _post_to(base, "reject", reason="not during the sale")
    assert rejected.status_code == 200 and "not during the sale" in rejected.json()["reason"]
    decisions = httpx.get(f"{base}/decisions?count=5", headers=READ).json()["decisions"]
    flags = [(d["needs_approval"], d["applied"]) for d in decisions]  # newest first
    assert flags == [(False, False), (True, False), (False, True), (True, False)]
    assert not httpx.get(f"{base}/status", headers=READ).json()["waits_for_approval"]
    assert httpx.get(f"{base}/offline", headers=READ).json() == {"offline": []}


def _post_to(base: str, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/{action}", json=body, headers=ADMIN, timeout=10)


@pytest.mark.parametrize("count", ["0", "1001", "x", "-1"])
def test_bad_query_values_are_400_in_the_openai_shape(proxy: Proxy, count: str) -> None:
    got = httpx.get(f"{proxy.url}/admin/experiments/exp-ab/audit?count={count}", headers=READ)
    assert got.status_code == 400 and got.json()["error"]["type"] == "invalid_request_error"


def test_tokens_from_a_secret_file_and_equal_tokens_refused(tmp_path: Any) -> None:
    from pydantic import ValidationError

    from proxy.config import ProxySettings

    (tmp_path / "admin").write_text("from-file\n")
    (tmp_path / "read").write_text("read-file")
    cfg = ProxySettings(admin_token_file=tmp_path / "admin", read_token_file=tmp_path / "read",
                        admin_token_env="TG_UNSET_A", read_token_env="TG_UNSET_R")  # fmt: skip
    assert cfg.admin_token is not None and cfg.admin_token.get_secret_value() == "from-file"
    assert "from-file" not in repr(cfg) and "from-file" not in cfg.model_dump_json()
    with pytest.raises(ValidationError, match="must differ"):
        ProxySettings(admin_token_file=tmp_path / "admin", read_token_file=tmp_path / "admin",
                      admin_token_env="TG_UNSET_A", read_token_env="TG_UNSET_R")  # fmt: skip
    with pytest.raises(ValidationError, match="cannot read the token file"):
        ProxySettings(admin_token_file=tmp_path / "missing", admin_token_env="TG_UNSET_A")
