"""Static checks of the alert rules and dashboard: promtool, unit tests, names from the catalog."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.catalog import CATALOG, spec
from tests.deploy.promql import (
    ALERTS_FILE,
    Expression,
    alert_rules,
    dashboard,
    dashboard_expressions,
    rule_expressions,
)
from tests.deploy.tools import tool

UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
METRIC = re.compile(r"\b(tunegate_[a-z_]+|tunegate:[a-z0-9_:]+)")
BY = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def test_promtool_accepts_the_rule_file() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS_FILE)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(UNIT_TESTS)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=UNIT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_summary_and_description() -> None:
    alerts = [rule for rule in alert_rules() if "alert" in rule]
    assert len(alerts) >= 10
    for rule in alerts:
        assert rule["alert"].startswith("Tunegate"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert "{{ $labels.experiment }}" in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.parametrize(
    "expression", dashboard_expressions() + rule_expressions(), ids=lambda e: e.where
)
def test_expressions_use_catalog_metrics_and_their_labels(expression: Expression) -> None:
    recorded = {rule["record"] for rule in alert_rules() if "record" in rule}
    names = set(METRIC.findall(expression.expr))
    assert names, expression.expr
    allowed = {"le", "instance", "job"}
    for name in names:
        if name in recorded:
            allowed |= {"experiment", "arm"}
            continue
        entry = spec(name)  # KeyError: a metric nobody exports
        allowed |= set(entry.labels)
    for group in BY.findall(expression.expr):
        used = {label.strip() for label in group.split(",") if label.strip()}
        assert used <= allowed, f"{expression.where}: {used - allowed} not labels of {names}"
    for label in re.findall(r"(\w+)\s*[=!]~?\s*\"", expression.expr):
        assert label in allowed, f"{expression.where}: filters on unknown label {label}"


def test_dashboard_shows_every_catalog_metric() -> None:
    used = {
        spec(name).name
        for e in dashboard_expressions()
        for name in METRIC.findall(e.expr)
        if not name.startswith("tunegate:")
    }
    assert used == {entry.name for entry in CATALOG}


def test_dashboard_layout_is_valid() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] == "tunegate"
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["experiment"]["allValue"] == ".*"
