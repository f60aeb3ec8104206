"""The whole loop on a Redis Cluster: proxy -> pairs -> judge -> controller decision.

Plus the feedback route, the admin API and the CLI, with three experiments whose keys live on
three different masters, so every batch of the pair logger and every judge read spans slots.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import httpx
import yaml
from redis.crc import key_slot

from analysis.controller import Controller
from bench.cluster import LocalCluster
from judge.worker import JudgeWorker
from tests.proxy.conftest import ADMIN_TOKEN, build_settings, experiment, run_proxy, sdk
from tunegate import keys
from tunegate.records import Action, decode_pair, decode_verdict
from tunegate.redis import RedisSettings, connect

#: one experiment per master (slots 865, 9053 and 15419 of the three ranges)
NAMES = ("alpha", "delta", "beta")
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def test_experiments_spread_over_the_masters(cluster: LocalCluster, cluster_url: str) -> None:
    masters = {cluster.master_of(keys.pairs(n)) for n in NAMES}
    assert len(masters) == 3, {n: key_slot(keys.pairs(n).encode()) for n in NAMES}


def test_the_whole_loop_on_a_cluster(cluster_url: str, doubles: Any, tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = build_settings(
        cluster_url, doubles.urls,
        [experiment(n, reference_from="metadata:reference", scorers=["normalized"]) for n in NAMES],
    )  # fmt: skip
    settings.redis.cluster = True
    settings.proxy.admin_token = SecretStr(ADMIN_TOKEN)
    per_experiment = 12
    with run_proxy(settings) as proxy:
        client = sdk(proxy.base_url)
        pair_ids: dict[str, str] = {}
        for i in range(per_experiment):
            for name in NAMES:
                raw = client.chat.completions.with_raw_response.create(
                    model=name, messages=[{"role": "user", "content": f"q{i}"}],
                    metadata={"reference": "Hello from candidate."}, store=True,
                )  # fmt: skip
                pair_ids[name] = raw.headers["x-tunegate-pair-id"]
        asyncio.run(_until_logged(settings.redis, per_experiment))

        posted = httpx.post(
            f"{proxy.base_url}/feedback",
            json={"pair_id": pair_ids["delta"], "model": "delta", "value": 1},
        )
        assert posted.status_code == 200, posted.text
        listed = httpx.get(f"{proxy.url}/admin/experiments/beta", headers=AUTH)
        assert listed.status_code == 200 and listed.json()["state"]["stage"] == "shadow"
        put = httpx.put(
            f"{proxy.url}/admin/experiments/beta/state",
            json={"stage": "paused", "reason": "cluster test", "expected_version": 0},
            headers=AUTH,
        )
        assert put.status_code == 200, put.text

    decisions = asyncio.run(_judge_and_decide(settings, per_experiment))
    assert set(decisions) == set(NAMES)
    assert all(d.action in set(Action) for d in decisions.values())

    config = tmp_path / "tunegate.yaml"
    document = settings.model_dump(mode="json", exclude={"proxy"})
    config.write_text(yaml.safe_dump(document | {"redis": {"url": cluster_url, "cluster": True}}))
    commands = (["state", "beta"], ["decide", "alpha"], ["judge", "--check"])
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", *command, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]  # side by side: each child spends most of its time importing
    outputs = [child.communicate(timeout=60) for child in children]
    for command, child, (out, err) in zip(commands, children, outputs, strict=True):
        assert child.returncode in (0, 1), (command, out, err)  # 1: no judge heartbeat now
        assert "Traceback" not in err, err
    assert "paused" in outputs[0][0], outputs[0]
    assert "alpha" in outputs[1][0], outputs[1]


async def _until_logged(redis: RedisSettings, count: int) -> None:
    async with connect(redis) as client:
        for _ in range(500):
            lengths = [await client.xlen(keys.pairs(n)) for n in NAMES]
            if all(n >= count for n in lengths):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"pairs logged per experiment: {lengths}, wanted {count}")


async def _judge_and_decide(settings: Any, count: int) -> dict[str, Any]:
    async with connect(settings.redis) as client:
        async with JudgeWorker(settings.judge, settings.experiments, client) as worker:
            await asyncio.wait_for(worker.run(until_idle=True), 60)
        for name in NAMES:
            pairs = [decode_pair(f) for _, f in await _entries(client, keys.pairs(name))]
            verdicts = [decode_verdict(f) for _, f in await _entries(client, keys.verdicts(name))]
            assert len(pairs) == count and len({p.id for p in pairs}) == count
            assert {v.pair_id for v in verdicts} == {p.id for p in pairs}, name
        controller = Controller(settings.experiments, client, retention=settings.retention)
        return {n: await controller.step(n, apply=True) for n in NAMES}


async def _entries(client: Any, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    # redis-py types xrange loosely: a list of (id, fields), never None
    return cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream))
