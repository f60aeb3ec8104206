"""The incremental evidence store against a real Redis: the same Evidence and Decision as the
full read, exact counts when the controller is cancelled mid-fold or two replicas fold at once,
late verdicts replacing (never adding) a pair's row, and hostile entries counted, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import math

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis

from analysis.decide import decide
from analysis.evidence import Evidence, load_evidence
from analysis.evidence_columns import MAX_NAMES, OVERFLOW
from analysis.evidence_store import EvidenceStore, incremental_evidence
from bench.analysis.factories import NOW, experiment
from tunegate import keys
from tunegate.records import (
    Arm,
    ArmResult,
    DeadLetter,
    Endpoint,
    Feedback,
    HumanLabel,
    Pair,
    Verdict,
    Winner,
    encode,
)

_USAGE = '{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":%d,"total_tokens":9}}'


def _arm(rng: np.random.Generator, name: str, *, v2: bool) -> ArmResult | None:
    draw = rng.random()
    if draw < 0.05:
        return None  # no shadow copy
    if draw < 0.1:
        return ArmResult(upstream=name, model=name, status=502, error="status", latency_s=0.1)
    completion = int(rng.integers(1, 300))
    return ArmResult(
        upstream=name,
        model=name,
        status=200,
        body=_USAGE % completion,
        latency_s=float(rng.gamma(4, 0.05)),
        completion_tokens=completion if v2 else None,
        prompt_tokens=7 if v2 else None,
        total_tokens=9 if v2 else None,
    )


def _pair_fields(pair: Pair, v2: bool) -> dict[bytes, bytes]:
    fields = encode(pair)
    if not v2:  # what a proxy before schema 2 wrote: no token fields, version 1
        doc = orjson.loads(fields["json"])
        doc["schema_version"] = 1
        for arm in ("control", "candidate"):
            if doc[arm] is not None:
                for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    del doc[arm][k]
        fields = {"v": b"1", "json": orjson.dumps(doc)}
    return {k.encode(): v for k, v in fields.items()}


def _verdict(pid: str, t: float, scorer: str, rng: np.random.Generator, cat: str) -> Verdict:
    if scorer == "pairwise":
        score = float(rng.choice([0.0, 0.5, 1.0], p=[0.3, 0.2, 0.5]))
        return Verdict(
            pair_id=pid, experiment="exp", scorer=scorer, judge_version="j", time=t,
            score=score, category=cat, inconsistent=bool(rng.random() < 0.1),
        )  # fmt: skip
    cand, ctrl = float(rng.random() < 0.8), float(rng.random() < 0.6)
    winner = Winner.TIE if cand == ctrl else (Winner.CANDIDATE if cand > ctrl else Winner.CONTROL)
    return Verdict(
        pair_id=pid, experiment="exp", scorer=scorer, judge_version="1", time=t,
        winner=winner, arm_scores={Arm.CANDIDATE: cand, Arm.CONTROL: ctrl}, category=cat,
    )  # fmt: skip


async def _write(client: aioredis.Redis, n: int, seed: int = 0, start: float = NOW - 900) -> None:
    """n pairs in time order with their verdicts, feedback, dead letters and junk entries."""
    rng = np.random.default_rng(seed)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pid, t = f"{seed}-{i}", start + i * 0.1
        v2 = i % 3 != 0
        cat = ["task", "probe", "math"][i % 3]
        pair = Pair(
            id=pid, experiment="exp", time=t, endpoint=Endpoint.CHAT, request="{}",
            served_arm=Arm.CANDIDATE if rng.random() < 0.3 else Arm.CONTROL,
            control=_arm(rng, "base", v2=v2), candidate=_arm(rng, "tuned", v2=v2), category=cat,
            user_key_hash=f"u{i % 40}",
        )  # fmt: skip
        fields = _pair_fields(pair, v2)
        if i % 89 == 1:  # an outcome field that does not load: the record itself is read
            fields[b"o"] = b"[garbage"
        pipe.xadd(keys.pairs("exp"), fields)  # type: ignore[arg-type]
        scorers = ["exact", "pairwise"] if i % 2 else ["pairwise", "exact"]
        for k, scorer in enumerate(scorers[: 1 + i % 2]):
            v = _verdict(pid, t + 0.01 + 0.01 * k, scorer, rng, cat)
            pipe.xadd(keys.verdicts("exp"), encode(v))  # type: ignore[arg-type]
        if i % 17 == 0:  # a refused score: NaN
            bad = Verdict.model_construct(
                **{**_verdict(pid, t + 0.04, "exact", rng, cat).__dict__, "score": math.nan}
            )
            pipe.xadd(keys.verdicts("exp"), encode(bad))  # type: ignore[arg-type]
        if i % 5 == 0:
            fb = Feedback(
                pair_id=pid, experiment="exp", time=t + 0.05, value=float(rng.random() < 0.6),
                arm=pair.served_arm, user_key_hash=f"u{i % 40}", label=["thumbs", None][i % 2],
            )  # fmt: skip
            pipe.xadd(keys.feedback("exp"), encode(fb))  # type: ignore[arg-type]
        if i % 50 == 0:
            dead = DeadLetter(experiment="exp", pair_id=pid, reason="unparseable")
            pipe.xadd(keys.dead("exp"), encode(dead))  # type: ignore[arg-type]
        if i % 97 == 0:
            pipe.xadd(keys.pairs("exp"), {"v": "9", "json": "{}"})
            pipe.xadd(keys.verdicts("exp"), {"junk": "1"})
    await pipe.execute()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _assert_same_evidence(full: Evidence, inc: Evidence) -> None:
    fj, ij = full.judge, inc.judge
    for name in ("scores", "times", "candidate_correct", "control_correct"):
        assert _same(getattr(fj, name), getattr(ij, name)), name
    assert fj.categories == ij.categories and fj.scorers == ij.scorers
    assert (fj.pairwise, fj.inconsistent, fj.bad_scores) == (
        ij.pairwise,
        ij.inconsistent,
        ij.bad_scores,
    )
    fp, ip = full.pairs, inc.pairs
    assert _same(fp.times, ip.times) and _same(fp.served_candidate, ip.served_candidate)
    for arm in Arm:
        for name in ("errors", "latency", "tokens"):
            assert _same(getattr(fp, name)[arm], getattr(ip, name)[arm]), (name, arm)
    ff, fi = full.feedback, inc.feedback
    assert _same(ff.times, fi.times) and _same(ff.values, fi.values)
    assert ff.arms == fi.arms and ff.labels == fi.labels
    # users are digests in the store: the same grouping, not the same strings
    assert len(set(ff.users)) == len(set(fi.users))
    assert len(set(zip(ff.users, fi.users, strict=True))) == len(set(ff.users))
    assert (full.dead_letters, full.bad_entries) == (inc.dead_letters, inc.bad_entries)


async def test_incremental_evidence_and_decision_equal_the_full_read(aredis):
    await _write(aredis, 600)
    # small pages: a pair's two verdicts fall on both sides of a page boundary
    store = EvidenceStore(aredis, "exp", page=7)
    assert await store.catch_up() > 600
    inc = await store.evidence()
    full = await load_evidence(aredis, "exp")
    assert inc.judge.n == 600 and inc.pairs.n == 600 and inc.bad_entries == 2 * 7
    assert not np.isnan(inc.pairs.tokens[Arm.CANDIDATE]).all()
    _assert_same_evidence(full, inc)
    for policy in ({}, {"min_pairs": 100, "min_rollback_pairs": 50}):
        config = experiment(**policy)
        a = decide(config, None, full, NOW).model_dump()
        b = decide(config, None, inc, NOW).model_dump()
        assert a == b
    # a second look folds nothing new and reads the same
    await _write(aredis, 0)
    assert await store.catch_up() == 0
    _assert_same_evidence(full, await incremental_evidence(aredis, "exp"))


async def test_a_look_folds_only_what_is_new(aredis):
    await _write(aredis, 200, seed=1)
    store = EvidenceStore(aredis, "exp")
    first = await store.catch_up()
    await _write(aredis, 50, seed=2, start=NOW - 100)
    second = await store.catch_up()
    assert second < first / 3
    _assert_same_evidence(await load_evidence(aredis, "exp"), await store.evidence())


async def test_cancelled_folds_and_concurrent_replicas_count_exactly(aredis):
    await _write(aredis, 800, seed=3)
    rng = np.random.default_rng(0)
    cancelled = 0
    for _ in range(30):  # a controller killed at random points of its fold
        task = asyncio.create_task(EvidenceStore(aredis, "exp", page=11).catch_up())
        await asyncio.sleep(float(rng.uniform(0, 0.01)))
        if not task.done():
            task.cancel()
            cancelled += 1
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert cancelled > 0
    # two replicas take over at once: WATCH lets one commit each page
    a, b = EvidenceStore(aredis, "exp", page=13), EvidenceStore(aredis, "exp", page=13)
    await asyncio.gather(a.catch_up(), b.catch_up())
    inc = await a.evidence()
    assert inc.pairs.n == 800 and inc.judge.n == 800
    _assert_same_evidence(await load_evidence(aredis, "exp"), inc)


async def test_a_late_better_verdict_replaces_the_pairs_row(aredis):
    await _write(aredis, 30, seed=4)
    store = EvidenceStore(aredis, "exp")
    await store.catch_up()
    before = await store.evidence()
    pid = "4-0"  # judged by pairwise first, then exact: pairwise stays; add a newer pairwise
    late = Verdict(
        pair_id=pid, experiment="exp", scorer="pairwise", judge_version="j2",
        time=NOW, score=0.0, category="task",
    )  # fmt: skip
    low = Verdict(
        pair_id=pid, experiment="exp", scorer="zzz", judge_version="1", time=NOW + 1,
        score=1.0, category="task",
    )  # fmt: skip
    for v in (late, low):
        await aredis.xadd(keys.verdicts("exp"), encode(v))
    await store.catch_up()
    after = await store.evidence()
    assert after.judge.n == before.judge.n  # replaced, not added
    assert after.judge.scores[0] == 0.0 and after.judge.times[0] == NOW
    assert after.judge.pairwise == before.judge.pairwise + 1
    full = await load_evidence(aredis, "exp")
    assert sorted(full.judge.scores) == sorted(after.judge.scores)


async def test_a_flood_of_category_names_is_bounded(aredis):
    pipe = aredis.pipeline(transaction=False)
    for i in range(MAX_NAMES + 200):
        v = Verdict(
            pair_id=f"p{i}", experiment="exp", scorer="pairwise", judge_version="1",
            time=NOW + i, score=1.0, category=f"cat-{i}",
        )  # fmt: skip
        pipe.xadd(keys.verdicts("exp"), encode(v))
    await pipe.execute()
    inc = await incremental_evidence(aredis, "exp")
    assert inc.judge.n == MAX_NAMES + 200
    assert len(set(inc.judge.categories)) < MAX_NAMES
    assert inc.judge.categories[-1] == OVERFLOW


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="page"):
        EvidenceStore(aioredis.Redis(), "exp", page=0)


async def test_labels_join_their_judged_rows_as_the_full_read_does(aredis):
    """The judge-corrected estimate reads the same labelled pairs through the store."""
    await _write(aredis, 300)
    pipe = aredis.pipeline(transaction=False)
    for i in range(0, 300, 6):  # 50 labels: people prefer the control on every other one
        winner = Winner.CONTROL if i % 12 else Winner.CANDIDATE
        label = HumanLabel(pair_id=f"0-{i}", experiment="exp", time=NOW, winner=winner)
        pipe.xadd(keys.labels("exp"), encode(label))
    label = HumanLabel(pair_id="never-judged", experiment="exp", time=NOW, winner=Winner.TIE)
    pipe.xadd(keys.labels("exp"), encode(label))
    await pipe.execute()
    full = await load_evidence(aredis, "exp")
    inc = await incremental_evidence(aredis, "exp")
    assert inc.labels.pair_ids == full.labels.pair_ids and len(inc.labels.pair_ids) == 51
    config = experiment(judge_estimate="corrected", min_labels=30)
    a = decide(config, None, full, NOW).evidence["corrected"]
    b = decide(config, None, inc, NOW).evidence["corrected"]
    assert isinstance(a, dict) and a["labelled"] == 50
    assert a == b
