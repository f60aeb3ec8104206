"""A page decoded at once equals the page decoded record by record, to the byte: pair rows from
analysis/evidence_pages.py against tunegate/outcomes.py + ``outcome_row``, the columnar verdict
join against the record one (analysis/verdict_join.py), and any value a record decoder refuses
makes the whole page irregular. Against Redis: a store folding small pages of clean records (so
they decode at once) gives the full read's evidence and the state of one bulk page."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import orjson
import pytest
import redis.asyncio as aioredis

from analysis.evidence import load_evidence
from analysis.evidence_columns import JUDGE_ROW, MAX_NAMES, PAIR_ROW, Names, outcome_row
from analysis.evidence_pages import SEPARATOR, pair_rows, split, verdict_columns
from analysis.evidence_store import EvidenceStore
from analysis.verdict_join import Stored, fold_verdict_columns, fold_verdict_records
from bench.analysis.factories import NOW, experiment
from tests.analysis.test_evidence_store import _assert_same_evidence
from tunegate import keys
from tunegate.errors import RecordError
from tunegate.outcomes import load_pair_outcome, load_verdict_outcome
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Verdict, Winner, encode


def _arm_value(rng: np.random.Generator) -> object:
    draw = rng.random()
    if draw < 0.1:
        return None
    ok = bool(rng.random() < 0.85)
    latency = [None, float(rng.gamma(4, 0.05)), int(rng.integers(0, 3))][int(rng.integers(0, 3))]
    completion = None if rng.random() < 0.2 else int(rng.integers(0, 2**40))
    total = None if rng.random() < 0.3 else int(rng.integers(0, 2**60))
    return [ok, latency, completion, total]


def _pair_values(rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for i in range(n):
        t = NOW + i * 0.01 if i % 7 else int(NOW) + i  # an integer time now and then
        out.append(orjson.dumps([t, bool(rng.random() < 0.3), _arm_value(rng), _arm_value(rng)]))
    return out


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_pair_rows_equal_the_record_decoder_to_the_byte() -> None:
    values = _pair_values(np.random.default_rng(1), 3000)
    rows = pair_rows(values)
    assert rows is not None
    expected = np.array([outcome_row(load_pair_outcome(v)) for v in values], dtype=PAIR_ROW)
    assert _same_bytes(rows, expected)


HOSTILE_PAIRS = [
    b"",  # no outcome field
    b"[garbage",
    b"{}",
    b"[1.0, false, null]",  # three values
    b"[true, false, null, null]",  # a boolean time
    b'["1", false, null, null]',
    b"[1.0, 0, null, null]",  # served not a boolean
    b"[1.0, false, [1, 0.1, 2, 3], null]",  # ok not a boolean
    b"[1.0, false, [true, true, 2, 3], null]",  # a boolean latency
    b"[1.0, false, [true, 0.1, 2.5, 3], null]",  # fractional tokens
    b"[1.0, false, [true, 0.1, false, 3], null]",
    b"[1.0, false, [true, 0.1, 2], null]",
    b'[1.0, false, null, {"ok": true}]',
    b"[1.0, false, null, [true, 0.1, 2, 3]] trailing",
]


@pytest.mark.parametrize("bad", HOSTILE_PAIRS)
def test_a_value_the_record_decoder_refuses_makes_the_page_irregular(bad: bytes) -> None:
    with pytest.raises(RecordError):
        load_pair_outcome(bad)
    values = _pair_values(np.random.default_rng(2), 20)
    values.insert(7, bad)
    assert pair_rows(values) is None


def test_values_are_split_exactly_or_not_at_all() -> None:
    values = [b"[1]", b"", b'["a\\u00ff"]']
    assert split(SEPARATOR.join(values), 3) == values
    assert split(b"", 0) == []
    # a value holding the separator byte is not UTF-8, hence not JSON: one piece too many
    assert split(SEPARATOR.join([b"[1]", b"[\xff]"]), 2) is None


def _verdict_values(rng: np.random.Generator, n: int, pairs: int) -> list[bytes]:
    """Verdict outcomes over ``pairs`` pair ids: pairwise and programmatic scorers, a pair
    judged twice, refused and unscored verdicts, empty and missing categories."""
    out = []
    for _ in range(n):
        pid = f"p{int(rng.integers(0, pairs))}"
        scorer = ["pairwise", "exact", "rouge"][int(rng.integers(0, 3))]
        t = NOW + float(rng.integers(0, 50)) * 0.5  # ties in time too
        category = ["task", "probe", None, ""][int(rng.integers(0, 4))]
        score: object = None
        winner: object = None
        arms: object = None
        if scorer == "pairwise":
            score = [0.0, 0.5, 1.0, -0.0, 1.5, None, 1][int(rng.integers(0, 7))]
        else:
            winner = [w.value for w in Winner][int(rng.integers(0, 3))]
            if rng.random() < 0.1:
                winner = None  # unscored
            arms = {"candidate": float(rng.random() < 0.8), "control": float(rng.random() < 0.6)}
            if rng.random() < 0.1:
                arms = {"candidate": 2.0} if rng.random() < 0.5 else {}
        inconsistent = bool(rng.random() < 0.1)
        out.append(orjson.dumps([pid, scorer, t, score, winner, arms, category, inconsistent]))
    return out


def _stored(rng: np.random.Generator, pairs: int) -> Stored:
    """Rows an earlier page wrote for a few of the pair ids (scorer codes as _names() has)."""
    out: Stored = {}
    for k, pid in enumerate(f"p{i}" for i in rng.choice(pairs, size=pairs // 4, replace=False)):
        out[pid] = (k, (NOW + float(rng.integers(0, 50)) * 0.5, 0.5, math.nan, math.nan, 0, 3))
    return out


def _names() -> Names:
    return Names(["task", "probe", "uncategorized", "pairwise", "exact"])


@pytest.mark.parametrize("seed", range(6))
def test_the_columnar_join_equals_the_record_join(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = _verdict_values(rng, 2000, pairs=[20, 500, 5000][seed % 3])
    stored = _stored(rng, [20, 500, 5000][seed % 3]) if seed % 2 else {}
    cols = verdict_columns(values)
    assert cols is not None
    a_names, b_names = _names(), _names()
    a = fold_verdict_columns(cols, stored, a_names, 100_000)
    b = fold_verdict_records([load_verdict_outcome(v) for v in values], stored, b_names, 100_000)
    assert a_names.names == b_names.names  # "rouge" and OVERFLOW interned in the same order
    assert _same_bytes(a.rows, b.rows) and a.ids == b.ids
    assert list(a.ids.values()) == list(range(100_000, 100_000 + len(a.ids)))
    assert a.replaced.keys() == b.replaced.keys()
    for at, row in a.replaced.items():
        assert _same_bytes(np.array([row], JUDGE_ROW), np.array([b.replaced[at]], JUDGE_ROW))
    assert (a.bad_scores, a.pairwise, a.inconsistent) == (b.bad_scores, b.pairwise, b.inconsistent)
    assert a.bad_scores > 0 and a.pairwise > 0


def test_a_full_name_table_overflows_alike() -> None:
    values = [
        orjson.dumps([f"p{i}", "exact", NOW, 1.0, None, None, f"c{i}", False]) for i in range(50)
    ]
    cols = verdict_columns(values)
    assert cols is not None
    names = [f"n{i}" for i in range(MAX_NAMES - 20)]
    a, b = Names(list(names)), Names(list(names))
    fold_verdict_columns(cols, {}, a, 0)
    fold_verdict_records([load_verdict_outcome(v) for v in values], {}, b, 0)
    assert a.names == b.names and len(a.names) == MAX_NAMES


HOSTILE_VERDICTS = [
    b"[]",
    b'["p", "exact", 1.0, 1.0, null, null, null]',
    b'[1, "exact", 1.0, 1.0, null, null, null, false]',  # a numeric pair id
    b'["p", "exact", true, 1.0, null, null, null, false]',
    b'["p", "exact", 1.0, true, null, null, null, false]',  # a boolean score
    b'["p", "exact", 1.0, null, "draw", null, null, false]',  # no such winner
    b'["p", "exact", 1.0, null, "tie", {"judge": 1.0}, null, false]',  # no such arm
    b'["p", "exact", 1.0, null, "tie", {"control": null}, null, false]',
    b'["p", "exact", 1.0, null, "tie", {"control": false}, null, false]',
    b'["p", "exact", 1.0, null, "tie", [1.0], null, false]',
    b'["p", "exact", 1.0, 1.0, null, null, 3, false]',  # a numeric category
    b'["p", "exact", 1.0, 1.0, null, null, null, 0]',
]


@pytest.mark.parametrize("bad", HOSTILE_VERDICTS)
def test_a_verdict_the_record_decoder_refuses_makes_the_page_irregular(bad: bytes) -> None:
    with pytest.raises(RecordError):
        load_verdict_outcome(bad)
    values = _verdict_values(np.random.default_rng(3), 20, pairs=10)
    values.insert(5, bad)
    assert verdict_columns(values) is None


def _answer(rng: np.random.Generator, name: str) -> ArmResult | None:
    if rng.random() < 0.05:
        return None
    if rng.random() < 0.05:
        return ArmResult(upstream=name, model=name, status=502, error="status", latency_s=0.1)
    completion = int(rng.integers(1, 300))
    return ArmResult(
        upstream=name, model=name, status=200, body="{}", latency_s=float(rng.gamma(4, 0.05)),
        prompt_tokens=7, completion_tokens=completion if rng.random() < 0.9 else None,
        total_tokens=completion + 7,
    )  # fmt: skip


async def _write_clean(client: aioredis.Redis, n: int) -> None:
    """Schema-2 pairs and outcome-field verdicts only: every page decodes at once. Pairs judged
    twice, verdicts arriving pages after their pair, refused and unscored verdicts."""
    rng = np.random.default_rng(5)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pid, t = f"q{i}", NOW - 900 + i * 0.1
        category = ["task", "probe", "math"][i % 3]
        pair = Pair(
            id=pid, experiment="exp", time=t, endpoint=Endpoint.CHAT, request="{}",
            served_arm=Arm.CANDIDATE if rng.random() < 0.3 else Arm.CONTROL,
            control=_answer(rng, "base"), candidate=_answer(rng, "tuned"), category=category,
        )  # fmt: skip
        pipe.xadd(keys.pairs("exp"), encode(pair))  # type: ignore[arg-type]
        late = max(i - int(rng.integers(0, 120)), 0)  # a verdict for a pair written earlier
        for j, scorer in ((i, "pairwise"), (late, "exact")):
            if scorer == "exact" and rng.random() < 0.5:
                continue
            score = float(rng.choice([0.0, 0.5, 1.0, 1.5], p=[0.3, 0.2, 0.45, 0.05]))
            verdict = Verdict(
                pair_id=f"q{j}", experiment="exp", scorer=scorer, judge_version="1",
                time=t + 0.01, score=score if scorer == "pairwise" else None,
                winner=None if scorer == "pairwise" or rng.random() < 0.1 else Winner.TIE,
                category=category, inconsistent=bool(rng.random() < 0.1),
            )  # fmt: skip
            pipe.xadd(keys.verdicts("exp"), encode(verdict))  # type: ignore[arg-type]
    await pipe.execute()


async def test_a_store_folding_decoded_pages_equals_the_full_read(aredis: aioredis.Redis) -> None:
    await _write_clean(aredis, 900)
    policy = experiment().policy
    store = EvidenceStore(aredis, "exp", page=64, policy=policy)
    assert await store.catch_up() > 0
    inc = await store.evidence()
    full = await load_evidence(aredis, "exp")
    # pairs arrive in time order: equal arrays; a verdict arriving pages after its pair keeps
    # its row where the pair was first judged (stream order), the full read sorts by time
    _assert_same_evidence(dataclasses.replace(full, judge=inc.judge), inc)
    fj, ij = full.judge, inc.judge
    assert sorted(zip(fj.times, fj.scores, strict=True)) == sorted(
        zip(ij.times, ij.scores, strict=True)
    )
    assert (fj.pairwise, fj.inconsistent, fj.bad_scores) == (
        ij.pairwise,
        ij.inconsistent,
        ij.bad_scores,
    )
    assert inc.judge.bad_scores > 0 and inc.bad_entries == 0
    # the state counted each judged pair once, each pair once
    state, counters = await store.decision_state()
    assert state.judge.n == inc.judge.n and state.pairs == inc.pairs.n
    assert counters["bad_scores"] == inc.judge.bad_scores
