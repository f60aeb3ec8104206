"""The controller, the CLI commands and the report against a real Redis."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
import yaml
from prometheus_client import CollectorRegistry

from analysis.controller import Controller
from analysis.metrics import ControllerMetrics
from bench.analysis.factories import pairs_and_verdicts
from cli import decide as decide_cmd
from cli import report as report_cmd
from cli import state as state_cmd
from cli.settings import Settings
from tunegate import keys
from tunegate.records import Action, Stage, decode_decision, encode
from tunegate.state import read_audit, read_state


def _settings(redis_url: str, **policy: object) -> Settings:
    return Settings.model_validate(
        {
            "redis": {"url": redis_url},
            "upstreams": {
                "base": {"base_url": "http://127.0.0.1:9/v1"},
                "tuned": {"base_url": "http://127.0.0.1:9/v1"},
            },
            "experiments": [
                {
                    "name": "exp",
                    "control": {"upstream": "base"},
                    "candidate": {"upstream": "tuned"},
                    "policy": policy,
                }
            ],
        }
    )


async def _seed(client: aioredis.Redis) -> None:
    rng = np.random.default_rng(1)
    pairs, verdicts = pairs_and_verdicts(rng, 400, "task", 0.8, 0.5, start=time.time() - 100)
    pipe = client.pipeline()
    for p in pairs:
        pipe.xadd(keys.pairs("exp"), encode(p))  # type: ignore[arg-type]  # invariant dict type
    for v in verdicts:
        pipe.xadd(keys.verdicts("exp"), encode(v))  # type: ignore[arg-type]  # invariant dict type
    await pipe.execute()


async def test_step_waits_for_approval_then_approve_applies(redis_url, aredis):
    await _seed(aredis)
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    metrics.touch("exp")
    controller = Controller(_settings(redis_url).experiments, aredis, metrics)
    decision = await controller.step("exp", apply=False)
    assert decision.action is Action.START_AB and decision.needs_approval
    assert await read_state(aredis, "exp") is None
    stored = await aredis.xrange(keys.decisions("exp"))
    assert decode_decision(stored[-1][1]).action is Action.START_AB
    assert (
        registry.get_sample_value(
            "tunegate_decisions_total", {"experiment": "exp", "action": "start_ab"}
        )
        == 1.0
    )
    approved = await controller.approve("exp")
    assert approved is not None and approved.applied
    state = await read_state(aredis, "exp")
    assert state is not None and state.stage is Stage.AB and state.ab_weight == 0.01
    audit = await read_audit(aredis, "exp")
    assert audit[-1].actor == "operator"
    assert await controller.approve("exp") is None  # nothing left to approve


async def test_auto_apply_changes_the_stage_as_controller(redis_url, aredis):
    await _seed(aredis)
    decision = await Controller(_settings(redis_url, auto_apply=True).experiments, aredis).step(
        "exp", apply=False
    )
    assert decision.applied and not decision.needs_approval
    state = await read_state(aredis, "exp")
    assert state is not None and state.stage is Stage.AB and state.updated_by == "controller"


@pytest.fixture
def config_file(tmp_path, redis_url):
    path = tmp_path / "tunegate.yaml"
    data = _settings(redis_url).model_dump(mode="json")
    data["redis"]["url"] = redis_url  # a SecretStr dumps masked
    path.write_text(yaml.safe_dump(data))
    return path


def main(argv: list[str]) -> int:
    """The analysis subcommands alone (other planes' commands are not needed here)."""
    parser = argparse.ArgumentParser(prog="tunegate")
    sub = parser.add_subparsers()
    for module in (decide_cmd, report_cmd, state_cmd):
        module.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_decide_report_and_state(config_file, redis_url, tmp_path, capsys):
    import asyncio

    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await _seed(client)
        await client.aclose()

    asyncio.run(seed())
    assert main(["decide", "exp", "--config", str(config_file), "--json"]) == 0
    decision = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert decision["action"] == "start_ab" and decision["needs_approval"] is True
    assert main(["state", "exp", "--approve", "--config", str(config_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stage"] == "ab"
    assert main(["state", "exp", "--audit", "--config", str(config_file), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    # with live definitions the first look also seeded the file's definition (audited by "config")
    assert [c["actor"] for c in changes if c["actor"] == "config"] in ([], ["config"])
    [change] = [c for c in changes if c["actor"] != "config"]
    assert change["actor"] == "operator" and change["after"]["stage"] == "ab"
    assert change["before"] is None and change["experiment"] == "exp"
    assert main(["state", "exp", "--audit", "5", "--config", str(config_file)]) == 0
    line = capsys.readouterr().out.strip()
    assert " v1  operator  - -> ab@0.01  " in line, line
    assert main(["state", "exp", "--audit", "0", "--config", str(config_file)]) == 2
    out = tmp_path / "reports"
    assert main(["report", "exp", "--out", str(out), "--config", str(config_file)]) == 0
    html = (out / "exp.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "judge win rate" in capsys.readouterr().out
    assert main(["decide", "nope", "--config", str(config_file)]) == 2


def _cli(*argv: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess, importing this tree."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv], capture_output=True, text=True, env=env, timeout=50
    )


def _yaml_with_url(tmp_path: Path, url: str) -> Path:
    data = _settings("redis://127.0.0.1:1/0").model_dump(mode="json")
    data["redis"]["url"] = url
    path = tmp_path / f"tunegate-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_config_errors_are_one_message_and_exit_2(tmp_path, capsys):
    listed = tmp_path / "list.yaml"
    listed.write_text("- redis\n- experiments\n")
    for config, expected in (
        (listed, "top level must be a mapping"),
        (_yaml_with_url(tmp_path, "redis://:x@[bad"), "redis.url: Invalid IPv6 URL"),
        (_yaml_with_url(tmp_path, "http://127.0.0.1:6379"), "redis.url: Redis URL must specify"),
    ):
        for command in ("decide", "report", "state"):
            with pytest.raises(SystemExit) as exited:
                main([command, "exp", "--config", str(config)])
            assert exited.value.code == 2
            assert expected in capsys.readouterr().err
    done = _cli("decide", "exp", "--config", str(listed))  # the real entry point, once
    assert done.returncode == 2 and "top level must be a mapping" in done.stderr
    assert "Traceback" not in done.stderr


class _QuietHTTP(BaseHTTPRequestHandler):
    """A plain HTTP server's handler (answers 400 to what Redis clients send), without logs."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_cli_against_a_server_that_is_not_redis_exits_1_with_a_message(tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietHTTP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = _yaml_with_url(tmp_path, f"redis://127.0.0.1:{server.server_address[1]}/0")
        for command in ("decide", "report", "state"):
            assert main([command, "exp", "--config", str(config)]) == 1
            err = capsys.readouterr().err
            # the server answers HTTP and hangs up: a protocol error or a closed connection,
            # either way one line that names the command, never a traceback
            assert err.startswith(f"tunegate {command}: ") and len(err.strip().splitlines()) == 1
    finally:
        server.shutdown()
        server.server_close()
