"""Every dashboard and rule expression against a real Prometheus scraping synthetic metrics."""

from __future__ import annotations

import math
import re

import pytest

from tests.deploy.conftest import eventually
from tests.deploy.exporter import EXPERIMENTS, HEALTHY, REGRESSING
from tests.deploy.prometheus import PrometheusServer
from tests.deploy.promql import (
    Expression,
    alert_rules,
    dashboard,
    dashboard_expressions,
    rule_expressions,
)

ALERT_NAMES = sorted(str(rule["alert"]) for rule in alert_rules() if "alert" in rule)


def _series(prometheus: PrometheusServer, expr: str) -> list[tuple[dict[str, str], float]]:
    rows = prometheus.query(expr)
    out = []
    for row in rows:
        metric = row["metric"]
        value = row["value"]
        assert isinstance(metric, dict) and isinstance(value, list)
        out.append(({str(k): str(v) for k, v in metric.items()}, float(value[1])))
    return out


def _by(prometheus: PrometheusServer, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Non-empty result of ``expr`` keyed by the values of ``labels``."""
    series = _series(prometheus, expr)
    assert series, f"no series yet for {expr}"
    return {tuple(metric[label] for label in labels): value for metric, value in series}


@pytest.mark.parametrize("expression", dashboard_expressions(), ids=lambda e: e.where)
def test_dashboard_expression_returns_series_for_each_experiment(
    prometheus: PrometheusServer, expression: Expression
) -> None:
    def check() -> list[tuple[dict[str, str], float]]:
        series = _series(prometheus, expression.expr)
        assert series, f"{expression.where}: no series for {expression.expr}"
        if "experiment" in expression.expr.split("(", 1)[0] + expression.legend:
            assert {m.get("experiment") for m, _ in series} == set(EXPERIMENTS), series
        return series

    series = eventually(check)
    placeholders = re.findall(r"\{\{\s*(\w+)\s*\}\}", expression.legend)
    for metric, value in series:
        assert math.isfinite(value), f"{expression.where}: {metric} = {value}"
        missing = [name for name in placeholders if name not in metric]
        assert not missing, f"{expression.where}: legend labels {missing} absent from {metric}"


@pytest.mark.parametrize("expression", rule_expressions(), ids=lambda e: e.where)
def test_rule_expression_selects_only_the_regressing_experiment(
    prometheus: PrometheusServer, expression: Expression
) -> None:
    expected = {REGRESSING} if expression.where.startswith("alert") else set(EXPERIMENTS)

    def check() -> None:
        series = _series(prometheus, expression.expr)
        assert {m.get("experiment") for m, _ in series} == expected, (expression.expr, series)

    eventually(check)


def test_experiment_variable_lists_both_experiments(prometheus: PrometheusServer) -> None:
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "experiment")
    match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
    assert match, variable["definition"]
    metric, label = match.groups()
    eventually(lambda: _assert_equal(set(prometheus.label_values(label, metric)), {*EXPERIMENTS}))


def _assert_equal(left: object, right: object) -> None:
    assert left == right


def test_panel_values_match_the_exporter(prometheus: PrometheusServer) -> None:
    exprs = {e.where: e.expr for e in dashboard_expressions()}

    def panel(title: str, *labels: str) -> dict[tuple[str, ...], float]:
        return _by(prometheus, exprs[f"panel {title!r} A"], *labels)

    def check() -> None:
        share = panel("5xx share by arm", "experiment", "arm")
        assert share[(REGRESSING, "candidate")] == pytest.approx(0.2, rel=0.02)
        assert share[(REGRESSING, "control")] == pytest.approx(0.01, rel=0.02)
        assert share[(HEALTHY, "candidate")] == pytest.approx(0.01, rel=0.02)
        latency = _by(
            prometheus, exprs["panel 'Served latency p50 / p95 by arm' B"], "experiment", "arm"
        )
        assert latency[(REGRESSING, "candidate")] == pytest.approx(2.125, rel=0.02)
        assert latency[(REGRESSING, "control")] == pytest.approx(0.375, rel=0.02)
        assert panel("Judged win rate of the candidate", "experiment", "bound") == {
            (REGRESSING, "estimate"): 0.33,
            (REGRESSING, "lower"): 0.28,
            (REGRESSING, "upper"): 0.38,
            (HEALTHY, "estimate"): 0.64,
            (HEALTHY, "lower"): 0.58,
            (HEALTHY, "upper"): 0.7,
        }
        assert panel("Current stage", "experiment", "stage") == {
            (REGRESSING, "rolled_back"): 1.0,
            (HEALTHY, "ab"): 1.0,
        }
        # Absolute rates need the 10 s window full of samples.
        cost = panel("Judge cost per hour", "experiment")
        assert cost[(HEALTHY,)] == pytest.approx(3.6, rel=0.05)
        dropped = panel("Shadow copies dropped by reason", "experiment", "reason")
        assert dropped[(HEALTHY, "mirror_rate")] == pytest.approx(5.0, rel=0.05)

    eventually(check)


def test_every_rule_evaluates_without_error(prometheus: PrometheusServer) -> None:
    def check() -> None:
        rules = prometheus.rules()
        assert len(rules) == len(alert_rules())
        for rule in rules:
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))

    eventually(check)


def test_every_alert_is_active_for_the_regressing_experiment_only(
    prometheus: PrometheusServer,
) -> None:
    expected = {(name, REGRESSING) for name in ALERT_NAMES}

    def check() -> None:
        active = set()
        for alert in prometheus.alerts():
            labels = alert["labels"]
            assert isinstance(labels, dict)
            assert alert["state"] in ("pending", "firing")
            active.add((labels["alertname"], labels.get("experiment")))
        assert active == expected

    eventually(check)


def test_verdict_panels_match_the_exporter(prometheus: PrometheusServer) -> None:
    exprs = {e.where: e.expr for e in dashboard_expressions()}

    def check() -> None:
        code = _by(prometheus, exprs["panel 'Rollout verdict' A"], "experiment")
        assert code == {(REGRESSING,): -1.0, (HEALTHY,): 1.0}
        latest = "panel 'Latest decision, result and age'"
        actions = _by(prometheus, exprs[f"{latest} A"], "experiment", "action")
        assert actions == {(REGRESSING, "roll_back"): 1.0, (HEALTHY, "ramp"): 1.0}
        results = _by(prometheus, exprs[f"{latest} C"], "experiment", "result")
        assert results == {(REGRESSING, "failure"): 1.0, (HEALTHY, "success"): 1.0}
        ages = _by(prometheus, exprs[f"{latest} B"], "experiment")
        assert all(25 < age < 120 for age in ages.values()), ages
        guardrails = _by(
            prometheus, exprs["panel 'Guardrail state' A"], "experiment", "guardrail", "state"
        )
        assert guardrails[(REGRESSING, "error_rate", "breached")] == 1.0
        assert guardrails[(HEALTHY, "error_rate", "holds")] == 1.0
        assert len(guardrails) == 6  # one state per guardrail and experiment

    eventually(check)
