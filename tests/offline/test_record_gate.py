"""The offline result in Redis, and the controller refusing the A/B until a pass is recorded."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import redis
import redis.asyncio as aioredis

from analysis.controller import Controller
from analysis.offline.record import latest_offline, offline_result, record_offline
from bench.analysis.factories import pairs_and_verdicts
from cli import main
from tests.offline.pipeline_fixtures import oracle, write_jsonl, write_spec
from tunegate import keys
from tunegate.experiments import ExperimentConfig
from tunegate.records import Action, Stage, encode

__all__ = ["oracle"]


def _experiment(**policy: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "exp",
            "control": {"upstream": "base"},
            "candidate": {"upstream": "tuned", "model": "tickets-v2"},
            "policy": {"min_pairs": 100, **policy},
        }
    )


async def _seed_winning_traffic(client: aioredis.Redis) -> None:
    pairs, verdicts = pairs_and_verdicts(
        np.random.default_rng(1), 400, "task", 0.8, 0.5, start=time.time() - 100
    )
    pipe = client.pipeline()
    for p in pairs:
        pipe.xadd(keys.pairs("exp"), encode(p))  # type: ignore[arg-type]  # invariant dict type
    for v in verdicts:
        pipe.xadd(keys.verdicts("exp"), encode(v))  # type: ignore[arg-type]  # invariant dict type
    await pipe.execute()


def _document(outcome: str, version: str = "tickets-v2") -> dict[str, object]:
    return {
        "name": "exp",
        "candidate_version": version,
        "outcome": outcome,
        "reasons": ["r"],
        "regressions": [] if outcome != "fail" else ["task/exact_match: worse"],
        "items_needed": None,
    }


async def test_controller_waits_for_an_offline_pass(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    try:
        await _seed_winning_traffic(client)
        # without the policy option the live evidence alone starts the A/B
        free = await Controller([_experiment()], client).step("exp", apply=False)
        assert free.action is Action.START_AB
        gated = Controller([_experiment(require_offline_pass=True)], client)
        held = await gated.step("exp", apply=False)
        assert held.action is Action.CONTINUE and held.stage_after is Stage.SHADOW
        assert "none is recorded for tickets-v2" in held.reason
        await record_offline(client, offline_result(_document("fail"), b"{}"))
        held = await gated.step("exp", apply=False)
        assert held.action is Action.CONTINUE and "is fail, not pass" in held.reason
        await record_offline(client, offline_result(_document("pass", "other-version"), b"{}"))
        held = await gated.step("exp", apply=False)
        assert held.action is Action.CONTINUE  # a pass for another version does not count
        await record_offline(client, offline_result(_document("pass"), b"{}"))
        started = await gated.step("exp", apply=False)
        assert started.action is Action.START_AB
        latest = await latest_offline(client, "exp", "tickets-v2")
        assert latest is not None and latest.outcome == "pass"
    finally:
        await client.aclose()


async def test_bad_entries_are_skipped(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.xadd(keys.offline("exp"), {"v": "1", "json": "{not json"})
        await client.xadd(keys.offline("exp"), {"v": "99", "json": "{}"})
        assert await latest_offline(client, "exp") is None
    finally:
        await client.aclose()


def test_eval_record_flag_writes_the_result(tmp_path, oracle, redis_url, capsys):
    server, url = oracle
    n = 30
    write_jsonl(
        tmp_path / "t.jsonl",
        [{"id": str(i), "prompt": f"q{i}", "reference": "yes"} for i in range(n)],
    )
    for i in range(n):
        server.answers[("tuned", f"q{i}")] = "yes"
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "name": "exp",
            "candidate_version": "tickets-v2",
            "upstreams": {"double": {"base_url": url}},
            "control": {"upstream": "double", "model": "base", "system_prompt": "Say yes."},
            "candidate": {"upstream": "double", "model": "tuned"},
            "tests": [{"path": "t.jsonl"}],
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
        },
    )
    config = tmp_path / "tunegate.yaml"
    config.write_text(json.dumps({"redis": {"url": redis_url}}))
    assert (
        main(["eval", "--spec", str(spec), "--config", str(config), "--record", "--no-html"]) == 0
    )
    sync = redis.Redis.from_url(redis_url)
    entries = sync.xrange(keys.offline("exp"))
    sync.close()
    assert isinstance(entries, list) and len(entries) == 1
    fields = entries[0][1]
    assert fields is not None
    record = json.loads(fields[b"json"])
    assert record["outcome"] == "pass" and record["candidate_version"] == "tickets-v2"
    report = (tmp_path / "out" / "report.json").read_bytes()
    assert record["report_sha256"] == hashlib.sha256(report).hexdigest()
