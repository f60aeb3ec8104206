"""Render the Helm chart offline with Helm's own engine (helm-python-sdk) into resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from helm_python import Chart

from tests.deploy.promql import CHART_DIR

__all__ = ["CHART_DIR", "RELEASE", "SCENARIOS", "Rendered", "render", "scenario_values"]

RELEASE = "tg"
SCENARIOS = sorted(path.stem for path in (CHART_DIR / "ci").glob("*-values.yaml"))

Resource = dict[str, Any]


class Rendered:
    """The resources of one render, found by kind and name."""

    def __init__(self, manifests: dict[str, str]) -> None:
        self.notes = next(
            (text for path, text in manifests.items() if path.endswith("NOTES.txt")), ""
        )
        self.resources: list[Resource] = []
        self.source: dict[int, str] = {}
        for path, text in manifests.items():
            if path.endswith(".txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.source[len(self.resources)] = path
                    self.resources.append(doc)

    def kinds(self) -> list[tuple[str, str]]:
        return sorted((r["kind"], r["metadata"]["name"]) for r in self.resources)

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r["kind"] == kind]

    def get(self, kind: str, name: str) -> Resource:
        for resource in self.of(kind):
            if resource["metadata"]["name"] == name:
                return resource
        raise KeyError(f"{kind}/{name} not rendered; have {self.kinds()}")


def scenario_values(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "ci" / f"{name}.yaml").read_text())
    return loaded


def render(values: dict[str, Any], *, chart_dir: Path = CHART_DIR) -> Rendered:
    with Chart.load(chart_dir) as chart:
        return Rendered(chart.render(values, name=RELEASE, namespace="ml", is_install=True))
