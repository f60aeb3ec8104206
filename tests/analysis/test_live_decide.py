"""`tunegate decide --all` with ``proxy.experiments_from: redis`` decides the live definitions."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis
import yaml

from tests.analysis.test_controller import _settings, main
from tunegate import keys
from tunegate.definitions import delete_definition, read_definitions, write_definition
from tunegate.experiments import ExperimentConfig
from tunegate.records import Stage, decode_decision
from tunegate.state import raise_fence, read_state, write_state


def _config(tmp_path: Path, redis_url: str) -> Path:
    path = tmp_path / "tunegate.yaml"
    data = _settings(redis_url).model_dump(mode="json")
    data["redis"]["url"] = redis_url  # a SecretStr dumps masked
    data["proxy"]["experiments_from"] = "redis"
    path.write_text(yaml.safe_dump(data))
    return path


def _made(ab_weight: float | None = None) -> ExperimentConfig:
    staged = {} if ab_weight is None else {"stage": "ab", "ab_weight": ab_weight}
    return ExperimentConfig.model_validate(
        {"name": "made", "control": {"upstream": "base"}, "candidate": {"upstream": "tuned"}}
        | staged
    )


def _run(coro_fn: object, redis_url: str) -> object:
    async def go() -> object:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await coro_fn(client)  # type: ignore[operator]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_decide_all_decides_an_experiment_created_in_redis(tmp_path, redis_url, capsys):
    config = _config(tmp_path, redis_url)
    assert _run(lambda c: write_definition(c, _made(), 0), redis_url) == 1
    assert main(["decide", "--all", "--config", str(config), "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    # the file's experiment was seeded (as a proxy seeds it) and decided beside the created one
    assert sorted(d["experiment"] for d in printed) == ["exp", "made"]
    stored = redis.Redis.from_url(redis_url).xrange(keys.decisions("made"))
    assert [decode_decision(f).experiment for _, f in stored] == ["made"]  # type: ignore[union-attr, arg-type]  # redis-py's loose reply type
    # one experiment by name: a live definition is known, a made-up name is a usage error
    assert main(["decide", "made", "--config", str(config), "--json"]) == 0
    assert main(["decide", "nothing", "--config", str(config)]) == 2
    assert "unknown experiment 'nothing'" in capsys.readouterr().err


def test_the_loop_picks_up_created_edited_and_deleted_definitions(tmp_path, redis_url):
    config = _config(tmp_path, redis_url)
    sync = redis.Redis.from_url(redis_url)
    command = [sys.executable, "-m", "cli", "decide", "--all", "--loop", "--json"]
    command += ["--interval", "0.2", "--config", str(config)]
    env = {**os.environ, "TUNEGATE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)

    def wait_for(check: object, what: str) -> None:
        deadline = time.monotonic() + 30
        while not check():  # type: ignore[operator]
            assert process.poll() is None, "the decide loop exited"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    def weights() -> list[float]:
        """The weight each decision on "made" started from (the definition's: no state hash)."""
        stored = sync.xrange(keys.decisions("made"))
        return [decode_decision(f).weight_before for _, f in stored]  # type: ignore[union-attr, arg-type]  # redis-py's loose reply type

    try:
        wait_for(lambda: sync.xlen(keys.decisions("exp")) > 0, "the seeded experiment")
        assert _run(lambda c: write_definition(c, _made(), 0), redis_url) == 1
        wait_for(lambda: weights(), "a decision on the created experiment")
        assert _run(lambda c: write_definition(c, _made(0.3), 1), redis_url) == 2
        wait_for(lambda: weights()[-1] == 0.3, "a decision from the edited definition")
        assert _run(lambda c: delete_definition(c, "made", 2), redis_url) is True
        time.sleep(0.5)  # a round in flight may still finish
        settled = sync.xlen(keys.decisions("made"))
        time.sleep(1.0)  # five more rounds
        assert sync.xlen(keys.decisions("made")) == settled
        assert sync.xlen(keys.decisions("exp")) > 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        sync.close()


def test_delete_removes_the_state_hash_and_keeps_the_fence(redis_url):
    async def scenario(client: aioredis.Redis) -> None:
        assert await write_definition(client, _made(), 0) == 1
        assert await raise_fence(client, "made", 3)
        written = await write_state(
            client, "made", stage=Stage.AB, ab_weight=0.2, mirror_rate=1.0,
            actor="controller", reason="ramp", fence=3,
        )  # fmt: skip
        assert written is not None
        assert not await delete_definition(client, "made", 2)  # a stale version deletes nothing
        assert await read_state(client, "made") is not None
        assert await delete_definition(client, "made", 1)
        assert await read_state(client, "made") is None
        assert "made" not in await read_definitions(client)
        assert await client.get(keys.fence("made")) == b"3"  # a stale leader still cannot write
        assert await client.xlen(keys.audit("made")) == 1  # history stays
        # created again, it starts from its new definition, not the old state
        assert await write_definition(client, _made(), 0) == 1
        assert await read_state(client, "made") is None

    _run(scenario, redis_url)
