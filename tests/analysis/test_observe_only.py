"""`tunegate decide --observe-only`: decisions recorded and exported as a verdict, never applied."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import redis.asyncio as aioredis
import yaml

from cli.decide import observe_only
from cli.server import free_port
from tests.analysis.test_controller import _seed, _settings, main
from tunegate.records import ExperimentState
from tunegate.state import read_state


def _config(tmp_path, redis_url: str):
    path = tmp_path / "tunegate.yaml"
    data = _settings(redis_url, auto_apply=True).model_dump(mode="json")
    data["redis"]["url"] = redis_url  # a SecretStr dumps masked
    path.write_text(yaml.safe_dump(data))
    return path


def _seeded(redis_url: str) -> None:
    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await _seed(client)
        await client.aclose()

    asyncio.run(seed())


def _state(redis_url: str) -> ExperimentState | None:
    async def read() -> ExperimentState | None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await read_state(client, "exp")
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_observe_only_turns_auto_apply_off_and_keeps_the_rest():
    experiments = _settings("redis://127.0.0.1:1/0", auto_apply=True, min_pairs=123).experiments
    (copied,) = observe_only(experiments)
    assert copied.policy.auto_apply is False and copied.policy.min_pairs == 123
    assert experiments[0].policy.auto_apply is True  # the settings are not changed
    assert copied.model_dump(exclude={"policy"}) == experiments[0].model_dump(exclude={"policy"})


def test_observe_only_records_but_does_not_apply_despite_auto_apply(tmp_path, redis_url, capsys):
    config = _config(tmp_path, redis_url)
    _seeded(redis_url)
    assert main(["decide", "exp", "--observe-only", "--config", str(config), "--json"]) == 0
    decision = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert decision["action"] == "start_ab"
    assert (decision["applied"], decision["needs_approval"]) == (False, True)
    assert _state(redis_url) is None
    # Without the flag the same policy applies it: the flag is what made the difference.
    assert main(["decide", "exp", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["applied"] is True


def test_observe_only_and_apply_exclude_each_other(tmp_path, redis_url, capsys):
    config = _config(tmp_path, redis_url)
    assert main(["decide", "exp", "--observe-only", "--apply", "--config", str(config)]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_the_controller_loop_exports_the_verdict(tmp_path, redis_url):
    """The real `tunegate decide --loop --observe-only` process serves tunegate_verdict_* series."""
    config = _config(tmp_path, redis_url)
    _seeded(redis_url)
    port = free_port()
    command = [sys.executable, "-m", "cli", "decide", "--all", "--loop", "--observe-only"]
    command += ["--interval", "0.5", "--metrics-port", str(port), "--config", str(config)]
    process = subprocess.Popen(
        command, env={**os.environ, "TUNEGATE_LOG_LEVEL": "warning"}, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        lines: dict[str, float] = {}
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                text = ""
            lines = {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("tunegate_verdict_")
            }
            if lines.get('tunegate_verdict_code{experiment="exp"}') == 1.0:
                break
            time.sleep(0.1)
        assert lines.get('tunegate_verdict_code{experiment="exp"}') == 1.0, lines
        assert lines['tunegate_verdict_result{experiment="exp",result="success"}'] == 1.0
        assert lines['tunegate_verdict_action{action="start_ab",experiment="exp"}'] == 1.0
        assert abs(lines['tunegate_verdict_timestamp_seconds{experiment="exp"}'] - time.time()) < 60
        assert _state(redis_url) is None  # observed, not applied
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
