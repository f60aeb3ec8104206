"""The decision state in the store against a real Redis: the Decision from the state equals the
one from the full read (counts exactly, floats to 1e-9, latency bounds aside), a controller
killed mid-fold and two replicas leave the state an uninterrupted fold makes, a late better
verdict changes the row but not the state (the first verdict counts), and a new policy or stage
rebuilds or restarts what depends on it."""

from __future__ import annotations

import asyncio
import contextlib
import json

import numpy as np
import redis.asyncio as aioredis

from analysis.controller import Controller
from analysis.decide import decide
from analysis.decide_state import decide_from_state
from analysis.evidence import load_evidence
from analysis.evidence_store import EvidenceStore, state_look
from bench.analysis.factories import NOW, experiment
from tests.analysis.test_decision_state import _close, _without_latency
from tests.analysis.test_evidence_store import _write
from tunegate import keys
from tunegate.records import ExperimentState, Stage, Verdict, encode

AB = ExperimentState(stage=Stage.AB, ab_weight=0.3, version=2, updated_at=NOW - 5000)


async def test_the_state_decision_equals_the_full_read(aredis):
    await _write(aredis, 600)
    full = await load_evidence(aredis, "exp")
    for live, policy in ((None, {}), (AB, {"min_pairs": 100, "min_rollback_pairs": 50})):
        await EvidenceStore(aredis, "exp").reset()  # each policy's state from the first pair
        config = experiment(**policy)
        stage = (live.updated_at, live.ab_weight) if live else (0.0, config.ab_weight)
        look = await state_look(aredis, "exp", config.policy, stage)
        assert look is not None
        state, counters, feedback = look
        assert state.judge.n == 600 and state.pairs == 600
        a = decide(config, live, full, NOW)
        b = decide_from_state(config, live, state, feedback, counters, NOW)
        assert (a.action, a.stage_after, a.weight_after) == (
            b.action,
            b.stage_after,
            b.weight_after,
        )
        _close(_without_latency(b.evidence), _without_latency(a.evidence))
        assert b.evidence["exposure"] == a.evidence["exposure"] and (live is None) == (
            b.evidence["srm"] is None
        )


async def test_killed_folds_and_two_replicas_leave_the_uninterrupted_state(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    policy = experiment().policy
    try:
        await _write(client, 800, seed=3)
        rng = np.random.default_rng(0)
        cancelled = 0
        for _ in range(30):  # a controller killed at random points of its fold
            store = EvidenceStore(client, "exp", page=11, policy=policy)
            task = asyncio.create_task(store.catch_up())
            await asyncio.sleep(float(rng.uniform(0, 0.01)))
            if not task.done():
                task.cancel()
                cancelled += 1
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert cancelled > 0
        a = EvidenceStore(client, "exp", page=11, policy=policy)
        b = EvidenceStore(client, "exp", page=11, policy=policy)
        await asyncio.gather(a.catch_up(), b.catch_up())
        taken_over, _ = await a.decision_state()
        await a.reset()
        await a.catch_up()
        uninterrupted, _ = await a.decision_state()
        assert taken_over.judge.n == 800 and taken_over.pairs == 800
        assert json.loads(taken_over.to_json()) == json.loads(uninterrupted.to_json())
    finally:
        await client.aclose()


async def test_a_late_better_verdict_replaces_the_row_but_not_the_state(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    policy = experiment().policy
    try:
        await _write(client, 30, seed=4)
        store = EvidenceStore(client, "exp", policy=policy)
        await store.catch_up()
        before, _ = await store.decision_state()
        late = Verdict(
            pair_id="4-0", experiment="exp", scorer="pairwise", judge_version="j2",
            time=NOW, score=0.0, category="task",
        )  # fmt: skip
        await client.xadd(keys.verdicts("exp"), encode(late))  # type: ignore[arg-type]
        await store.catch_up()
        after, counters = await store.decision_state()
        rows = await store.evidence()
        assert rows.judge.scores[0] == 0.0  # the row is the better verdict
        assert after.judge == before.judge  # the tests saw the first one, once
        assert counters["pairwise"] == rows.judge.pairwise
    finally:
        await client.aclose()


async def test_a_new_policy_rebuilds_and_a_new_stage_restarts_the_srm(aredis):
    await _write(aredis, 200, seed=5)
    store = EvidenceStore(aredis, "exp", policy=experiment().policy, stage=(0.0, 0.3))
    await store.catch_up()
    first, _ = await store.decision_state()
    assert first.srm.n == 200
    other = experiment(min_pairs=50).policy
    rebuilt = EvidenceStore(aredis, "exp", policy=other, stage=(NOW, 0.5))
    assert await rebuilt.catch_up() == 0  # nothing new: rebuilt from the rows
    state, _ = await rebuilt.decision_state()
    assert state.params["burn"] == 50 and state.judge.n == first.judge.n
    assert (state.srm.since, state.srm.weight, state.srm.n) == (NOW, 0.5, 0)


async def test_a_fold_without_a_policy_keeps_the_state_current(redis_url):
    """``tunegate report`` or the labels look fold too: the state follows their pages."""
    client = aioredis.Redis.from_url(redis_url)
    policy = experiment().policy
    try:
        await _write(client, 100, seed=7)
        store = EvidenceStore(client, "exp", policy=policy)
        await store.catch_up()
        await _write(client, 100, seed=8, start=NOW - 300)
        assert await EvidenceStore(client, "exp").catch_up() > 0  # no policy
        assert await store.catch_up() == 0
        kept, _ = await store.decision_state()
        await store.reset()
        await store.catch_up()
        fresh, _ = await store.decision_state()
        assert kept.judge.n == 200
        _close(json.loads(kept.to_json()), json.loads(fresh.to_json()))
    finally:
        await client.aclose()


async def test_the_controller_decides_from_the_state(aredis):
    await _write(aredis, 300, seed=6)
    config = experiment()
    decision = await Controller([config], aredis).step("exp", apply=False)
    raw = await aredis.hget(keys.evidence_meta("exp"), "decision-state")
    assert raw is not None and json.loads(raw)["judge"]["n"] == 300
    assert decision.evidence["judge"]["n"] == 300  # type: ignore[index]
    row_based = await Controller([config], aredis, incremental=False).step("exp", apply=False)
    assert (decision.action, decision.stage_after) == (row_based.action, row_based.stage_after)
