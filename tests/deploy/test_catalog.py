"""The metric catalog the dashboard and alerts are tested on matches what the planes export."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from analysis.metrics import ControllerMetrics
from analysis.verdict_metrics import VerdictMetrics
from judge.metrics import JudgeMetrics
from proxy.metrics import ProxyMetrics
from tests.deploy.catalog import CATALOG


def _proxy(registry: CollectorRegistry) -> None:
    ProxyMetrics(registry).touch(["chat"])


def _judge(registry: CollectorRegistry) -> None:
    JudgeMetrics(registry).touch("chat")


def _analysis(registry: CollectorRegistry) -> None:
    ControllerMetrics(registry).touch("chat")
    VerdictMetrics(registry).touch("chat")


PLANES: dict[str, Callable[[CollectorRegistry], None]] = {
    "proxy": _proxy,
    "judge": _judge,
    "analysis": _analysis,
}


@pytest.mark.parametrize("plane", sorted(PLANES))
def test_plane_exports_its_catalog_metrics(plane: str) -> None:
    registry = CollectorRegistry()
    PLANES[plane](registry)
    exported = {
        f"{family.name}_total" if family.type == "counter" else family.name: family.type
        for family in registry.collect()
    }
    assert exported == {entry.name: entry.kind for entry in CATALOG if entry.plane == plane}
    for family in registry.collect():
        entry = next(e for e in CATALOG if e.name in (family.name, f"{family.name}_total"))
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels == set(entry.labels), (sample.name, labels)
