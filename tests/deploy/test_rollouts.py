"""The Argo Rollouts and Flagger examples: valid against the released CRDs, and read right.

Each example is validated against its CRD's openAPIV3Schema (unknown fields rejected, as
`kubectl apply --validate=strict` would). Then every PromQL query in them runs against a real
Prometheus scraping a real controller registry (ControllerMetrics + VerdictMetrics) that has
observed one generated Decision of each kind, and the answer is read the way each tool reads it:
Argo's successCondition/failureCondition on ``result``, Flagger's thresholdRange.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import helm_python
import jsonschema
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analysis.metrics import ControllerMetrics
from analysis.verdict_metrics import VerdictMetrics
from cli.server import serve_in_thread
from tests.deploy.chart import CHART_DIR, Rendered
from tests.deploy.conftest import eventually
from tests.deploy.decisions import EXPECTED, KINDS, decision
from tests.deploy.prometheus import PrometheusServer
from tests.deploy.rollouts import (
    Example,
    argo_measurement,
    argo_metric_phase,
    examples,
    flagger_check_passes,
    substitute,
    validate,
)

EXAMPLES = examples()
STALE = "exp-stale-success"  # a success older than max-age: must read inconclusive
UNDECIDED = "exp-undecided"  # touched at start, no decision yet
ABSENT = "exp-absent"  # no series at all


def _one(kind: str, name: str | None = None) -> Example:
    found = [
        e for e in EXAMPLES if e.kind == kind and name in (None, e.resource["metadata"]["name"])
    ]
    assert len(found) == 1, [e.where for e in found]
    return found[0]


def _metric(template: Example) -> dict[str, object]:
    (metric,) = template.resource["spec"]["metrics"]
    assert isinstance(metric, dict)
    return metric


def test_examples_cover_both_tools() -> None:
    kinds = sorted(e.kind for e in EXAMPLES)
    assert kinds == ["AnalysisTemplate", "AnalysisTemplate", "Canary", "MetricTemplate", "Rollout"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.where)
def test_example_validates_against_the_released_crd(example: Example) -> None:
    validate(example.resource)


@pytest.mark.parametrize(
    ("kind", "path", "value", "message"),
    [
        ("AnalysisTemplate", ("spec", "metrics", 0, "provider", "prometheus", "querry"), "x",
         "Additional properties"),
        ("AnalysisTemplate", ("spec", "metrics", 0, "interval"), 60, "is not of type"),
        ("Canary", ("spec", "analysis", "webhooks", 0, "type"), "before-rollout",
         "is not one of"),
        ("Canary", ("spec", "analysis", "metrics", 0, "thresholdRange", "min"), "zero",
         "is not of type"),
        ("MetricTemplate", ("spec", "provider", "kind"), "prometheus", "Additional properties"),
    ],
)  # fmt: skip
def test_the_crd_check_rejects_a_broken_example(
    kind: str, path: tuple[str | int, ...], value: object, message: str
) -> None:
    broken = copy.deepcopy(next(e for e in EXAMPLES if e.kind == kind).resource)
    node: Any = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate(broken)


def test_rollout_steps_use_the_shipped_template_with_its_required_args() -> None:
    template = _one("AnalysisTemplate", "tunegate-verdict")
    required = {a["name"] for a in template.resource["spec"]["args"] if "value" not in a}
    steps = _one("Rollout").resource["spec"]["strategy"]["canary"]["steps"]
    analyses = [s["analysis"] for s in steps if "analysis" in s]
    assert len(analyses) == 3
    for analysis in analyses:
        assert [t["templateName"] for t in analysis["templates"]] == ["tunegate-verdict"]
        assert {a["name"] for a in analysis["args"]} == required


@pytest.mark.parametrize("name", ["tunegate-verdict", "tunegate-verdict-web"])
def test_argo_analysis_waits_on_continue_and_never_succeeds_by_running_out(name: str) -> None:
    metric = _metric(_one("AnalysisTemplate", name))
    count = int(str(metric["count"]))
    waiting = ["Inconclusive"] * (count - 1)
    assert argo_metric_phase(metric, waiting) == "Running"
    assert argo_metric_phase(metric, [*waiting, "Inconclusive"]) == "Inconclusive"
    assert argo_metric_phase(metric, [*waiting[:30], "Successful"]) == "Successful"
    assert argo_metric_phase(metric, [*waiting[:30], "Failed"]) == "Failed"
    assert argo_metric_phase(metric, ["Failed"]) == "Failed"


def test_canary_uses_the_metric_template_and_gates_each_step() -> None:
    canary = _one("Canary").resource["spec"]["analysis"]
    (metric,) = canary["metrics"]
    assert metric["templateRef"]["name"] == _one("MetricTemplate").resource["metadata"]["name"]
    hooks = {h["type"]: h["metadata"]["cmd"] for h in canary["webhooks"]}
    assert set(hooks) == {"confirm-traffic-increase", "confirm-promotion", "rollback"}
    assert "expect=success" in hooks["confirm-traffic-increase"]
    assert "expect=success" in hooks["confirm-promotion"]
    assert "expect=failure" in hooks["rollback"]


# --- the queries against a real Prometheus ------------------------------------------------


def _exporter_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    controller, verdicts = ControllerMetrics(registry), VerdictMetrics(registry)
    for kind in KINDS:
        name = f"exp-{kind}"
        controller.touch(name)
        verdicts.touch(name)
        made = decision(name, kind)
        controller.observe(made)
        verdicts.observe(made)
    verdicts.touch(STALE)
    verdicts.observe(decision(STALE, "promote", age_seconds=3600))
    verdicts.touch(UNDECIDED)
    return registry


@pytest.fixture(scope="module")
def verdict_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    registry = _exporter_registry()

    async def scrape(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[Route("/metrics", scrape)])
    with serve_in_thread(app) as url:
        workdir = tmp_path_factory.mktemp("verdict-prometheus")
        with PrometheusServer(workdir, [url.removeprefix("http://")], []) as server:
            eventually(lambda: _assert_scraped(server))
            yield server


def _assert_scraped(server: PrometheusServer) -> None:
    assert len(server.query("tunegate_verdict_code")) == len(KINDS) + 2


def _values(server: PrometheusServer, query: str) -> list[float]:
    rows = server.query(query)
    values = []
    for row in rows:
        value = row["value"]
        assert isinstance(value, list)
        values.append(float(value[1]))
    return values


def _argo_query(experiment: str) -> str:
    template = _one("AnalysisTemplate", "tunegate-verdict")
    defaults = {a["name"]: a.get("value", "") for a in template.resource["spec"]["args"]}
    query = _metric(template)["provider"]["prometheus"]["query"]  # type: ignore[index]
    return substitute(str(query), {**defaults, "experiment": experiment})


def _flagger_query(experiment: str) -> str:
    query = _one("MetricTemplate").resource["spec"]["query"]
    return substitute(str(query), {"experiment": experiment})


@pytest.mark.parametrize("kind", KINDS)
def test_argo_prometheus_analysis_reads_each_decision_kind(
    verdict_prometheus: PrometheusServer, kind: str
) -> None:
    metric = _metric(_one("AnalysisTemplate", "tunegate-verdict"))
    result = _values(verdict_prometheus, _argo_query(f"exp-{kind}"))
    assert len(result) == 1, result
    assert argo_measurement(metric, result) == EXPECTED[kind][0], (kind, result)


@pytest.mark.parametrize("experiment", [STALE, UNDECIDED, ABSENT])
def test_argo_prometheus_analysis_waits_on_a_stale_or_missing_verdict(
    verdict_prometheus: PrometheusServer, experiment: str
) -> None:
    metric = _metric(_one("AnalysisTemplate", "tunegate-verdict"))
    result = _values(verdict_prometheus, _argo_query(experiment))
    assert result == [0.0]
    assert argo_measurement(metric, result) == "Inconclusive"


@pytest.mark.parametrize("kind", KINDS)
def test_flagger_metric_check_fails_only_on_failure(
    verdict_prometheus: PrometheusServer, kind: str
) -> None:
    (metric,) = _one("Canary").resource["spec"]["analysis"]["metrics"]
    (value,) = _values(verdict_prometheus, _flagger_query(f"exp-{kind}"))
    assert flagger_check_passes(metric, value) is EXPECTED[kind][1], (kind, value)


@pytest.mark.parametrize("experiment", [STALE, UNDECIDED, ABSENT])
def test_flagger_metric_check_passes_a_stale_or_missing_verdict(
    verdict_prometheus: PrometheusServer, experiment: str
) -> None:
    (metric,) = _one("Canary").resource["spec"]["analysis"]["metrics"]
    assert _values(verdict_prometheus, _flagger_query(experiment)) == [0.0]
    assert flagger_check_passes(metric, 0.0)


def test_verdict_series_carry_guardrails_and_samples_needed(
    verdict_prometheus: PrometheusServer,
) -> None:
    rows = verdict_prometheus.query('tunegate_verdict_guardrail{experiment="exp-roll_back"} == 1')
    states = {(r["metric"]["guardrail"], r["metric"]["state"]) for r in rows}  # type: ignore[index]
    assert states == {("error_rate", "breached"), ("latency_p95", "holds"), ("tokens", "unproven")}
    assert _values(
        verdict_prometheus, 'tunegate_verdict_samples_needed{experiment="exp-continue"}'
    ) == [120.0]
    actions = verdict_prometheus.query("tunegate_verdict_action == 1")
    by_experiment = {r["metric"]["experiment"]: r["metric"]["action"] for r in actions}  # type: ignore[index]
    assert {f"exp-{kind}": kind for kind in KINDS}.items() <= by_experiment.items()
    assert by_experiment[UNDECIDED] == "continue"


# --- the same objects from the chart ---------------------------------------------------------

ALL_ROLLOUT_OBJECTS: dict[str, Any] = {
    "existingSecret": "tunegate-credentials",
    "rollouts": {"argo": {"prometheus": True, "web": True}, "flagger": {"metricTemplate": True}},
}


def _render_as(values: dict[str, Any], release: str, namespace: str) -> Rendered:
    with helm_python.Chart.load(CHART_DIR) as chart:
        return Rendered(chart.render(values, name=release, namespace=namespace, is_install=True))


def test_the_chart_renders_the_examples_for_its_release() -> None:
    """Release "tunegate" in namespace "tunegate" is what the examples are written for."""
    rendered = _render_as(ALL_ROLLOUT_OBJECTS, "tunegate", "tunegate")
    objects = rendered.of("AnalysisTemplate") + rendered.of("MetricTemplate")
    assert len(objects) == 3
    for resource in objects:
        validate(resource)
        name = resource["metadata"]["name"]
        (example,) = [e for e in EXAMPLES if (e.kind, e.resource["metadata"]["name"]) == (
            resource["kind"], name)]  # fmt: skip
        assert resource["spec"] == example.resource["spec"], example.where
        assert resource["metadata"]["labels"]["app.kubernetes.io/component"] == "rollouts"


def test_the_chart_names_its_own_release_and_settings() -> None:
    values = {**ALL_ROLLOUT_OBJECTS, "rollouts": {**ALL_ROLLOUT_OBJECTS["rollouts"],
              "maxAgeSeconds": 900, "prometheusAddress": "http://prom.obs:9090"}}  # fmt: skip
    rendered = _render_as(values, "tg", "ml")
    web = rendered.get("AnalysisTemplate", "tg-tunegate-verdict-web")
    args = {a["name"]: a.get("value") for a in web["spec"]["args"]}
    assert args["tunegate-url"] == "http://tg-tunegate-proxy.ml.svc:8080"
    assert args["max-age-seconds"] == "900"
    prometheus = rendered.get("AnalysisTemplate", "tg-tunegate-verdict")
    assert {a["name"]: a.get("value") for a in prometheus["spec"]["args"]}[
        "prometheus-address"
    ] == "http://prom.obs:9090"
    flagger = rendered.get("MetricTemplate", "tg-tunegate-verdict")
    assert "< bool 900)" in flagger["spec"]["query"]
    assert not _render_as({"redis": {"url": "redis://r:6379/0"}}, "tg", "ml").of("AnalysisTemplate")


def test_the_web_template_needs_the_secret_with_the_admin_token() -> None:
    values = {"redis": {"url": "redis://r:6379/0"}, "rollouts": {"argo": {"web": True}}}
    with pytest.raises(helm_python.HelmRenderError, match="set existingSecret"):
        _render_as(values, "tg", "ml")
