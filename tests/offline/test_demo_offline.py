"""The demo's offline gate (demo/offline.py) on tiny real models: run, report, record in Redis."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from rich.console import Console

from analysis.offline.record import latest_offline
from cli.settings import Settings
from demo.generative import Prepared, traffic_items
from demo.offline import OFFLINE_SYSTEM_PROMPT, offline_gate
from proxy.config import LocalModelConfig, UpstreamConfig
from tests.offline.pipeline_fixtures import tiny_pair

__all__ = ["tiny_pair"]


def _local(path, adapter=None) -> UpstreamConfig:
    return UpstreamConfig(
        local=LocalModelConfig(path=str(path), adapter=adapter, device="cpu", batch_window_ms=5.0)
    )


async def test_demo_offline_gate_runs_records_and_uses_the_strongest_control(
    tmp_path, tiny_pair, redis_url
):
    base, lora = tiny_pair
    prepared = Prepared(
        experiment="support-triage",
        upstreams={"smollm2-base": _local(base), "smollm2-tickets": _local(base, str(lora))},
        items=traffic_items(4, 4),
        candidate=str(lora),
        reused=False,
        train_seconds=0.0,
        final_loss=None,
        max_tokens=8,
    )
    settings = Settings.model_validate(
        {"redis": {"url": redis_url}, "upstreams": prepared.upstreams}
    )
    found = await offline_gate(prepared, settings, tmp_path / "offline", Console(record=True))
    assert found["outcome"] in ("pass", "fail", "inconclusive")
    document = json.loads((tmp_path / "offline" / "report" / "report.json").read_text())
    assert document["arms"]["control"]["system_prompt"] == OFFLINE_SYSTEM_PROMPT
    assert document["arms"]["control"]["few_shot"] == 1
    assert document["control_kind"] == "strongest"
    assert {i["set"] for i in document["items"]} == {"tickets", "probes"}
    assert len(document["items"]) == 8
    metrics = {c["metric"] for c in document["comparisons"] if c["set"] == "tickets"}
    assert metrics == {"json_fields", "field_accuracy"}
    client = aioredis.Redis.from_url(redis_url)
    try:
        recorded = await latest_offline(client, "support-triage", "smollm2-tickets")
    finally:
        await client.aclose()
    assert recorded is not None and recorded.outcome == found["outcome"]
    assert (tmp_path / "offline" / "report" / "report.html").is_file()
