"""OpenAI-shaped errors everywhere, request validation before any arm, auth scheme, bounded fields.

Against the app under uvicorn with the OpenAI doubles as arms: every error body is
``{"error": {"message", "type", "param", "code"}}``, and a malformed request reaches no double.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.proxy.conftest import ADMIN_TOKEN, Doubles, Proxy, sdk


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/admin/nowhere", 404, "not_found"),
        ("GET", "/v1/feedback", 405, "method_not_allowed"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("PUT", "/v1/embeddings", 405, "method_not_allowed"),
        ("GET", "/v1/files/x", 404, "not_found"),  # no passthrough upstream
    ],
)
def test_framework_and_hot_path_errors_are_openai_shaped(
    proxy: Proxy, doubles: Doubles, method: str, path: str, status: int, code: str
):
    response = httpx.request(method, proxy.url + path)
    error = openai_error(response, status)
    assert error["code"] == code
    if status == 405:
        assert "POST" in response.headers["allow"] or "GET" in response.headers["allow"]
    assert doubles.control.received == [] and doubles.candidate.received == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": "exp-shadow", "messages": "hi"}, "messages"),
        ("/v1/chat/completions", {"model": "exp-shadow"}, "messages"),
        ("/v1/chat/completions", {"model": "exp-shadow", "messages": []}, "messages"),
        ("/v1/chat/completions", {"model": "exp-shadow", "messages": [1]}, "messages[0]"),
        ("/v1/chat/completions", {"model": "exp-shadow", "messages": [{"content": "x"}]},
         "messages[0]"),
        ("/v1/chat/completions",
         {"model": "exp-shadow", "messages": [{"role": "user", "content": "a"},
                                              {"role": "user", "content": 5}]}, "messages[1]"),
        ("/v1/chat/completions",
         {"model": "exp-shadow", "messages": [{"role": "user", "content": [{"text": "a"}]}]},
         "messages[0]"),
        ("/v1/chat/completions",
         {"model": "exp-shadow", "messages": [{"role": "user", "content": "a"}], "stream": "yes"},
         "stream"),
        ("/v1/chat/completions", {"model": 5, "messages": [{"role": "user", "content": "a"}]},
         "model"),
        ("/v1/completions", {"model": "exp-shadow", "prompt": 5}, "prompt"),
        ("/v1/completions", {"model": "exp-shadow", "prompt": [[1, "a"]]}, "prompt"),
        ("/v1/embeddings", {"model": "exp-shadow", "input": []}, "input"),
        ("/v1/embeddings", {"model": "exp-shadow", "input": {"a": 1}}, "input"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_before_any_arm(
    proxy: Proxy, doubles: Doubles, path: str, body: dict[str, Any], param: str
):
    error = openai_error(httpx.post(proxy.url + path, json=body), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert doubles.control.received == [] and doubles.candidate.received == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions",
         {"model": "exp-shadow", "messages": [
             {"role": "system", "content": "s"},
             {"role": "user", "content": [{"type": "text", "text": "a"}]},
             {"role": "assistant", "content": None,
              "tool_calls": [{"id": "c", "type": "function",
                              "function": {"name": "f", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "c", "content": "r"}]}),
        ("/v1/completions", {"model": "exp-shadow", "prompt": [1, 2, 3]}),
        ("/v1/completions", {"model": "exp-shadow", "prompt": ["a", "b"]}),
        ("/v1/embeddings", {"model": "exp-shadow", "input": [[1, 2], [3]]}),
    ],
)  # fmt: skip
def test_well_formed_variants_pass(proxy: Proxy, path: str, body: dict[str, Any]):
    assert httpx.post(proxy.url + path, json=body).status_code == 200


def test_the_sdk_raises_bad_request_with_the_param(proxy: Proxy, doubles: Doubles):
    client = sdk(proxy.base_url)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="exp-shadow", messages="nope")  # type: ignore[arg-type]
    assert raised.value.param == "messages"
    assert doubles.control.received == []


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(proxy: Proxy, scheme: str):
    response = httpx.get(
        proxy.url + "/admin/experiments", headers={"authorization": f"{scheme} {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "value",
    ["Basic " + ADMIN_TOKEN, ADMIN_TOKEN, f"Bearer {ADMIN_TOKEN}x", "Bearer", "", "Bearer  x"],
)
def test_other_schemes_and_tokens_are_refused(proxy: Proxy, value: str):
    response = httpx.get(proxy.url + "/admin/experiments", headers={"authorization": value})
    assert openai_error(response, 401)["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pair_id": "p", "model": "exp-shadow", "value": 1e9}, "value"),
        ({"pair_id": "p", "model": "exp-shadow", "value": -1e7}, "value"),
        ({"pair_id": "p", "model": "m" * 300, "value": 1}, "model"),
        ({"pair_id": "p" * 65, "model": "exp-shadow", "value": 1}, "pair_id"),
        ({"pair_id": "p", "model": "exp-shadow", "value": 1, "label": "l" * 201}, "label"),
    ],
)
def test_feedback_fields_are_bounded(proxy: Proxy, body: dict[str, Any], field: str):
    error = openai_error(httpx.post(proxy.url + "/v1/feedback", json=body), 400)
    assert field in error["message"]


def test_feedback_with_a_body_that_is_not_json_is_an_openai_400(proxy: Proxy):
    response = httpx.post(
        proxy.url + "/v1/feedback",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    openai_error(response, 400)


def test_admin_reason_is_bounded(proxy: Proxy):
    response = httpx.put(
        proxy.url + "/admin/experiments/exp-shadow/state",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        json={"stage": "shadow", "reason": "r" * 501},
    )
    assert "reason" in openai_error(response, 400)["message"]
