"""/healthz, /readyz and /metrics: what an operator's probes and Prometheus see."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cli.server import free_port
from tests.proxy.conftest import Doubles, Proxy, build_settings, experiment, run_proxy, sdk


def test_healthz_and_readyz(proxy: Proxy):
    assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{proxy.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["config_version"] == proxy.settings.config_version
    assert body["checks"] == {
        "redis": "ok", "upstream:candidate": "ok", "upstream:control": "ok", "upstream:other": "ok"
    }  # fmt: skip


def test_readyz_reports_an_upstream_down(doubles: Doubles, redis_url: str):
    urls = dict(doubles.urls, candidate=f"http://127.0.0.1:{free_port()}")
    with run_proxy(build_settings(redis_url, urls, [experiment("exp")])) as proxy:
        ready = httpx.get(f"{proxy.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["upstream:candidate"] != "ok"
        assert ready.json()["checks"]["upstream:control"] == "ok"


def test_metrics_exposition(proxy: Proxy):
    labels = {"experiment": "exp-shadow", "arm": "control"}
    served = {**labels, "endpoint": "chat.completions", "status": "200"}
    before = proxy.metric("tunegate_requests_total", **served)
    ttft_before = proxy.metric("tunegate_time_to_first_token_seconds_count", **labels)
    client = sdk(proxy.base_url)
    client.chat.completions.create(model="exp-shadow", messages=[{"role": "user", "content": "x"}])
    stream = client.chat.completions.create(
        model="exp-shadow", messages=[{"role": "user", "content": "x"}], stream=True
    )
    list(stream)
    text = httpx.get(f"{proxy.url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "tunegate_requests", "tunegate_request_duration_seconds",
        "tunegate_time_to_first_token_seconds", "tunegate_upstream_errors",
        "tunegate_shadow_inflight", "tunegate_shadow_dropped", "tunegate_pairs_logged",
        "tunegate_pairs_dropped", "tunegate_pairlog_buffer_depth", "tunegate_feedback",
    ):  # fmt: skip
        assert name in families, name
    assert proxy.metric("tunegate_requests_total", **served) == before + 2
    assert proxy.metric("tunegate_time_to_first_token_seconds_count", **labels) == ttft_before + 1
    # touched at start: zero series exist before anything happens
    assert (
        proxy.metric("tunegate_shadow_dropped_total", experiment="exp-rolled", reason="budget") == 0
    )
    assert 'tunegate_shadow_dropped_total{experiment="exp-rolled",reason="budget"} 0.0' in text
