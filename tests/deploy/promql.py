"""Every PromQL expression the chart ships: dashboard panels, variables, annotations, rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ALERTS_FILE",
    "CHART_DIR",
    "DASHBOARD_FILE",
    "Expression",
    "alert_rules",
    "dashboard",
    "dashboard_expressions",
    "grafana_to_promql",
    "rule_expressions",
]

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "tunegate"
DASHBOARD_FILE = CHART_DIR / "dashboards" / "tunegate.json"
ALERTS_FILE = CHART_DIR / "rules" / "alerts.yaml"

#: What the tests put in place of Grafana's variables. The experiment variable's "All" value is
#: the regex .* (allValue in the dashboard); the rate window spans ten scrapes.
GRAFANA_VARIABLES = {
    "$experiment": ".*",
    "$__rate_interval": "10s",
    "$__range": "1h",
    "$__interval": "5s",
}


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from."""

    where: str  # e.g. 'panel "5xx share by arm" B' or 'alert TunegatePairsDropped'
    expr: str  # as Prometheus receives it (Grafana variables substituted)
    legend: str = ""  # Grafana legend format, {{label}} placeholders


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def grafana_to_promql(expr: str) -> str:
    """Substitute Grafana's variables; fail on one the tests do not know."""
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise AssertionError(f"unknown Grafana variable {leftover[0]} in {expr}")
    return expr


def dashboard_expressions() -> list[Expression]:
    board = dashboard()
    found: list[Expression] = []
    panels = board["panels"]
    assert isinstance(panels, list)
    for panel in panels:
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} {target['refId']}"
            legend = target.get("legendFormat", "")
            found.append(Expression(where, grafana_to_promql(target["expr"]), legend))
    annotations = board["annotations"]
    assert isinstance(annotations, dict)
    for annotation in annotations["list"]:
        if "expr" in annotation:
            where = f"annotation {annotation['name']!r}"
            legend = annotation.get("titleFormat", "")
            found.append(Expression(where, grafana_to_promql(annotation["expr"]), legend))
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_expressions() -> list[Expression]:
    found = []
    for rule in alert_rules():
        kind, name = ("alert", rule["alert"]) if "alert" in rule else ("record", rule["record"])
        found.append(Expression(f"{kind} {name}", str(rule["expr"])))
    return found
