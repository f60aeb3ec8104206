"""The metric catalog the dashboard and alerts are tested on matches what the planes export."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from proxy.metrics import ProxyMetrics
from tests.deploy.catalog import CATALOG


def _exported(registry: CollectorRegistry) -> dict[str, str]:
    """Family name (counters with their _total) -> kind, from the registry's own description."""
    families = {}
    for family in registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = family.type
    return families


def test_proxy_exports_the_catalog_proxy_metrics() -> None:
    registry = CollectorRegistry()
    metrics = ProxyMetrics(registry)
    metrics.touch(["chat"])
    expected = {entry.name: entry.kind for entry in CATALOG if entry.plane == "proxy"}
    assert _exported(registry) == expected
    for family in registry.collect():
        entry = next(e for e in CATALOG if e.name in (family.name, f"{family.name}_total"))
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels == set(entry.labels), (sample.name, labels)
