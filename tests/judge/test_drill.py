"""Crash drills and the CLI: kill -9 a worker mid-batch, another reclaims it; SIGTERM; --check."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import yaml

from bench.servers.judge_double import Step
from cli.server import free_port
from judge.worker import JudgeWorker
from tests.judge.cli_entry import main as cli
from tests.judge.helpers import EXP, make_pair, make_settings
from tunegate import keys
from tunegate.records import decode_dead_letter, decode_verdict, encode

ROOT = Path(__file__).resolve().parents[2]


def write_config(path: Path, redis_url: str, judge_url: str | None, **judge: object) -> Path:
    config = {
        "redis": {"url": redis_url},
        "upstreams": {"base": {"base_url": "http://127.0.0.1:1/v1"},
                      "ft": {"base_url": "http://127.0.0.1:2/v1"}},
        "experiments": [{"name": EXP, "control": {"upstream": "base"},
                         "candidate": {"upstream": "ft"}}],
        "judge": {"claim_idle_seconds": 1.0, "heartbeat_seconds": 0.5, "read_block_ms": 50,
                  "backoff_base_seconds": 0.01, **judge},
    }  # fmt: skip
    if judge_url is not None:
        config["judge"]["endpoint"] = {"model": "judge-model", "base_url": f"{judge_url}/v1"}  # type: ignore[index]
    path.write_text(yaml.safe_dump(config))
    return path


def spawn(config: Path, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.judge.cli_entry", "judge", "--config", str(config), *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def wait_for(predicate: Callable[[], Awaitable[object]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def pending_of(aredis: Any, consumer: str) -> int:
    try:
        summary = await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP)
    except redis.ResponseError:  # the group does not exist until a worker starts
        return 0
    return sum(c["pending"] for c in summary["consumers"] if c["name"] == consumer.encode())


async def test_kill_9_mid_batch_leaves_exactly_one_verdict_per_pair(
    tmp_path, redis_url, aredis, judge_double, judge_url
):
    def fast(prompt: str) -> Step:
        return Step("A>B", delay=0.03)

    judge_double.policy = fast
    config = write_config(tmp_path / "c.yaml", redis_url, judge_url, batch_size=8, concurrency=4)
    pairs = [make_pair(f"cand {i}", f"ctrl {i}") for i in range(40)]
    for pair in pairs:
        await aredis.xadd(keys.pairs(EXP), encode(pair))
    victim = spawn(config, "--name", "victim")
    try:
        await wait_for(lambda: pending_of(aredis, "victim"), 30, "the victim to take a batch")
        await wait_for(lambda: _verdicts_at_least(aredis, 2), 30, "the victim's first verdicts")
        # from here the judge stalls, so the victim cannot finish the batch it holds before the
        # kill, however slow the machine (it used to, under load: nothing left to reclaim)
        stalled: list[str] = []

        def stall(prompt: str) -> Step:
            stalled.append(prompt)
            return Step("A>B", delay=3.0)

        async def holding() -> bool:  # a call of the batch it holds hangs: it cannot ack it
            return bool(stalled) and await pending_of(aredis, "victim") > 0

        judge_double.policy = stall
        await wait_for(holding, 30, "the victim to hold a batch with a stalled call")
        victim.send_signal(signal.SIGKILL)  # killed mid-batch
        victim.wait(10)
        judge_double.policy = fast
        settings = make_settings(redis_url, judge_url=judge_url, batch_size=8, concurrency=4)
        async with JudgeWorker(
            settings.judge, settings.experiments, aredis, name="survivor"
        ) as survivor:
            stats = await asyncio.wait_for(survivor.run(until_idle=True), 60)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        victim.stdout.close()  # type: ignore[union-attr]
        victim.stderr.close()  # type: ignore[union-attr]
    assert stats.reclaimed > 0
    verdict_ids = [decode_verdict(f).pair_id for _, f in await aredis.xrange(keys.verdicts(EXP))]
    dead_ids = [decode_dead_letter(f).pair_id for _, f in await aredis.xrange(keys.dead(EXP))]
    assert sorted(verdict_ids + dead_ids) == sorted(p.id for p in pairs)  # each exactly once
    assert (await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP))["pending"] == 0


async def _verdicts_at_least(aredis: Any, n: int) -> bool:
    return bool(await aredis.xlen(keys.verdicts(EXP)) >= n)


async def test_sigterm_finishes_the_batch_and_check_follows_the_heartbeat(
    tmp_path, redis_url, aredis, judge_double, judge_url
):
    judge_double.policy = lambda prompt: Step("A>B", delay=0.05)
    config = write_config(tmp_path / "c.yaml", redis_url, judge_url, batch_size=4)
    for i in range(12):
        await aredis.xadd(keys.pairs(EXP), encode(make_pair(f"a{i}", f"b{i}")))
    port = free_port()
    worker = spawn(config, "--name", "w", "--metrics-port", str(port))
    try:
        await wait_for(lambda: pending_of(aredis, "w"), 30, "the worker to take a batch")
        async with httpx.AsyncClient() as http:

            async def scraped_ok() -> bool:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                assert 'tunegate_judge_pending{experiment="exp"}' in text
                return 'tunegate_judge_calls_total{experiment="exp",outcome="ok"}' in text

            await wait_for(scraped_ok, 20, "a judge call counted on /metrics")
        assert await asyncio.to_thread(cli, ["judge", "--config", str(config), "--check"]) == 0
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        worker.stdout.close()  # type: ignore[union-attr]
        worker.stderr.close()  # type: ignore[union-attr]
    summary = await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP)
    assert summary["pending"] == 0  # the batch in flight was finished and acknowledged
    assert await aredis.xlen(keys.verdicts(EXP)) % 4 == 0
    assert await asyncio.to_thread(cli, ["judge", "--config", str(config), "--check"]) == 1


async def test_burst_cli_drains_and_reports(tmp_path, redis_url, aredis, capsys):
    config = write_config(tmp_path / "c.yaml", redis_url, None)
    for i in range(3):
        await aredis.xadd(keys.pairs(EXP), encode(make_pair(f"same {i}", f"same {i}")))
    code = await asyncio.to_thread(
        cli, ["judge", "--config", str(config), "--burst", "--json", "--workers", "2"]
    )
    assert code == 0
    stats = orjson.loads(capsys.readouterr().out)
    assert sum(s["verdicts"] for s in stats) == 3 and len(stats) == 2


def test_calibrate_cli_json(tmp_path, redis_url, shared_data, capsys):
    config = write_config(tmp_path / "c.yaml", redis_url, None)
    data = shared_data / "judge-golden" / "llmbar_Adversarial_GPTOut.json"
    code = cli(["judge", "calibrate", "--config", str(config), "--data", str(data),
                "--judge", "longer", "--json"])  # fmt: skip
    assert code == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["n"] == 47 and report["accuracy"] == report["longer_baseline_accuracy"]
    assert cli(["judge", "calibrate", "--config", str(config), "--data", str(data)]) == 2
