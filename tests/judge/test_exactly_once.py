"""Exactly one outcome per (pair, scorer, judge version), whatever step a worker is killed at.

A real worker process SIGKILLs itself right after one step of its write/ack sequence (read,
each verdict, each dead letter, the last write before the XACK, the XACK) while a second worker
runs; the judge rejects some pairs (dead letters) until the victim is dead, then answers every
call, which is when a pair dead-lettered but not acknowledged used to get a verdict as well.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from bench.servers.judge_double import Step
from judge.worker import JudgeWorker
from tests.judge.helpers import EXP, make_pair, make_settings
from tests.judge.test_drill import ROOT, pending_of, wait_for, write_config
from tunegate import keys
from tunegate.records import decode_dead_letter, decode_verdict, encode

SCORERS = ("normalized", "pairwise")


def spawn_victim(config, step: str, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.judge.crash_worker", str(config), "victim", step, str(n)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def outcomes(aredis) -> Counter[tuple[str, str, str]]:
    """(pair id, scorer, kind) of every verdict and dead letter."""
    found: Counter[tuple[str, str, str]] = Counter()
    for _, fields in await aredis.xrange(keys.verdicts(EXP)):
        verdict = decode_verdict(fields)
        found[(verdict.pair_id, verdict.scorer, "verdict")] += 1
    for _, fields in await aredis.xrange(keys.dead(EXP)):
        letter = decode_dead_letter(fields)
        found[(letter.pair_id, letter.scorer, "dead")] += 1
    return found


@pytest.mark.parametrize(
    ("step", "n"),
    [
        ("read", 1),  # batch delivered, nothing written
        ("verdict", 1),  # between the first verdict and the next write
        ("verdict", 3),
        ("dead_letter", 1),  # between a dead letter and the next write
        ("dead_letter", 2),
        ("before_ack", 1),  # every outcome of the batch written, no XACK
        ("acked", 1),  # acknowledged, the next batch not read
    ],
)
async def test_kill_9_at_every_step_leaves_exactly_one_outcome(
    tmp_path, redis_url, aredis, judge_double, judge_url, step, n
):
    rejecting = True

    def judge(prompt: str) -> Step:
        return Step(status=400) if rejecting and "reject" in prompt else Step("A>B")

    judge_double.policy = judge
    knobs = {"batch_size": 4, "concurrency": 2, "claim_idle_seconds": 1.0}
    config = write_config(tmp_path / "c.yaml", redis_url, judge_url, **knobs)
    pairs = [
        make_pair(f"cand {i}", f"ctrl {i}", reference=f"ref {i}",
                  question=f"{'reject' if i % 2 else 'keep'} question {i}")
        for i in range(12)
    ]  # fmt: skip
    for pair in pairs:
        await aredis.xadd(keys.pairs(EXP), encode(pair))
    victim = spawn_victim(config, step, n)
    try:
        await wait_for(lambda: pending_of(aredis, "victim"), 30, "the victim to take a batch")
        settings = make_settings(redis_url, judge_url=judge_url, **knobs)  # type: ignore[arg-type]
        async with JudgeWorker(
            settings.judge, settings.experiments, aredis, name="survivor"
        ) as survivor:
            run = asyncio.create_task(survivor.run(until_idle=True))
            code = await asyncio.to_thread(victim.wait, 30)
            assert code == -signal.SIGKILL, victim.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
            rejecting = False  # the judge recovers: a second outcome would be a verdict now
            stats = await asyncio.wait_for(run, 60)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        victim.stderr.close()  # type: ignore[union-attr]
    found = await outcomes(aredis)
    per_slot = Counter((pair_id, scorer) for pair_id, scorer, _ in found.elements())
    expected = {(p.id, s) for p in pairs for s in SCORERS}
    assert set(per_slot) == expected and set(per_slot.values()) == {1}, found
    dead = {(pair_id, scorer) for pair_id, scorer, kind in found if kind == "dead"}
    rejected = {p.id for p in pairs if "reject" in p.request}
    assert all(scorer == "pairwise" and pair_id in rejected for pair_id, scorer in dead)
    if step == "dead_letter" or (step, n) == ("before_ack", 1):
        assert dead, "the victim's dead letters are part of the drill"
        assert stats.reclaimed > 0 and stats.duplicates > 0  # the markers refused second ones
    assert (await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP))["pending"] == 0
