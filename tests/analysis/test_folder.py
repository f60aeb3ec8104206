"""The continuous folder against a real Redis: folds between looks leave the state one fold of
everything makes (every count and histogram exactly; the floats to 1e-9, as sums over other page
boundaries round differently), a folder process killed with SIGKILL mid-way is resumed by another
without counting anything twice, and the decide loop's folder keeps the state current with no
look at all, in a running `tunegate decide --loop` as well as on its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import redis
import redis.asyncio as aioredis
import yaml

from analysis.evidence_store import EvidenceStore
from analysis.folder import ContinuousFolder
from bench.analysis.factories import NOW, experiment
from tests.analysis.test_controller import _settings
from tests.analysis.test_decision_state import _close
from tests.analysis.test_evidence_store import _write
from tests.judge.test_drill import wait_for
from tunegate import keys

CONFIG = experiment()


def _folder(client: aioredis.Redis, page: int = 2000, interval_s: float = 60.0) -> ContinuousFolder:
    return ContinuousFolder(client, lambda: {"exp": CONFIG}, interval_s, page=page)


async def _state_json(client: aioredis.Redis) -> bytes:
    raw = await client.hget(keys.evidence_meta("exp"), "decision-state")
    assert isinstance(raw, bytes)
    return raw


async def _one_shot(client: aioredis.Redis, page: int = 1_000_000) -> bytes:
    """The state one uninterrupted fold of everything the streams hold makes."""
    store = EvidenceStore(client, "exp", page=page, policy=CONFIG.policy, stage=(0.0, 0.0))
    await store.reset()
    await store.catch_up()
    return await _state_json(client)


async def test_interleaved_folds_leave_exactly_the_one_shot_state(aredis):
    folder = _folder(aredis, page=37)  # pages that split every slice
    for k in range(12):  # twelve slices of traffic, a fold after each
        await _write(aredis, 40 + 7 * k, seed=k, start=NOW - 900 + 100 * k)
        await folder.fold_once()
    interleaved = await _state_json(aredis)
    assert folder.folded > 0
    state, _ = await EvidenceStore(aredis, "exp", policy=CONFIG.policy).decision_state()
    assert state.pairs == sum(40 + 7 * k for k in range(12))
    _close(json.loads(interleaved), json.loads(await _one_shot(aredis)))


_KILLED = """
import asyncio, sys
import redis.asyncio as aioredis
from tests.analysis.test_folder import _folder
async def main():
    client = aioredis.Redis.from_url(sys.argv[1])
    print("folding", flush=True)
    while True:
        await _folder(client, page=5).fold_once()
asyncio.run(main())
"""


def test_a_folder_killed_mid_way_is_resumed_without_double_counting(redis_url):
    async def with_client(step: Callable[[aioredis.Redis], Awaitable[object]]) -> object:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await step(client)
        finally:
            await client.aclose()

    def cursor() -> object:
        return asyncio.run(with_client(lambda c: c.hget(keys.evidence_meta("exp"), "cursor:pairs")))

    rng = np.random.default_rng(1)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    asyncio.run(with_client(lambda c: _write(c, 1500, seed=9)))
    cursors = []
    for _ in range(4):  # a folder process, SIGKILLed at a random point of its folding
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED, redis_url], stdout=subprocess.PIPE, env=env
        )
        assert child.stdout is not None and child.stdout.readline() == b"folding\n"
        time.sleep(float(rng.uniform(0.2, 0.6)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
        cursors.append(cursor())
    assert cursors[-1] is not None and len(set(cursors)) > 1  # it was killed mid-way

    async def resume(client: aioredis.Redis) -> None:
        await _folder(client, page=5).fold_once()  # another replica takes over
        resumed = await _state_json(client)
        state, _ = await EvidenceStore(client, "exp", policy=CONFIG.policy).decision_state()
        assert state.pairs == 1500
        # the same pages uninterrupted (a pair's second verdict in a later page counts as its
        # first did not: analysis/evidence_store.py), so any double count shows
        _close(json.loads(resumed), json.loads(await _one_shot(client, page=5)))

    asyncio.run(with_client(resume))


async def test_the_running_folder_keeps_the_state_current_without_a_look(aredis):
    store = EvidenceStore(aredis, "exp", policy=CONFIG.policy)

    async def all_folded() -> bool:  # pairs and their verdicts (the counter also has the rest)
        state, _ = await store.decision_state()
        return state.pairs == 300 and state.judge.n == 300

    async with _folder(aredis, interval_s=0.05) as folder:
        await _write(aredis, 300, seed=4)
        await wait_for(all_folded, 20, "the folder")
    assert folder.folded >= 300


def test_the_decide_loop_folds_between_its_looks(tmp_path: Path, redis_url: str) -> None:
    """A look an hour away: the loop's folder alone brings the state up to what was written."""
    data = _settings(redis_url).model_dump(mode="json")
    data["redis"]["url"] = redis_url  # a SecretStr dumps masked
    data["analysis"]["fold_interval_seconds"] = 0.2
    path = tmp_path / "tunegate.yaml"
    path.write_text(yaml.safe_dump(data))
    sync = redis.Redis.from_url(redis_url)
    command = [sys.executable, "-m", "cli", "decide", "exp", "--loop", "--interval", "3600"]
    env = {**os.environ, "TUNEGATE_LOG_LEVEL": "warning"}
    command += ["--config", str(path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)

    def wait_until(check: object, what: str) -> None:
        deadline = time.monotonic() + 30
        while not check():  # type: ignore[operator]
            assert process.poll() is None, "the decide loop exited"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    async def pairs_folded() -> int:
        client = aioredis.Redis.from_url(redis_url)
        try:
            state, _ = await EvidenceStore(client, "exp", policy=CONFIG.policy).decision_state()
            return state.pairs
        finally:
            await client.aclose()

    async def write() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await _write(client, 300, seed=5)
        finally:
            await client.aclose()

    try:
        wait_until(lambda: sync.xlen(keys.decisions("exp")) == 1, "the first look")
        asyncio.run(write())
        wait_until(lambda: asyncio.run(pairs_folded()) == 300, "the folder to fold the new pairs")
        assert sync.xlen(keys.decisions("exp")) == 1  # no second look: the folder did it
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        sync.close()
