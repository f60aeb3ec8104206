"""The running decision state against the array tests: folded a page at a time, it gives the
same checks and Decision as gather_checks/decide on the whole rows (counts exactly, floats to
1e-9), except the latency p95 bounds, which are the histogram's (valid and never tighter)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from analysis.decide import decide
from analysis.decide_checks import gather_checks
from analysis.decide_state import checks_from_state, decide_from_state
from analysis.evidence import FeedbackEvidence
from analysis.evidence_columns import JUDGE_ROW, PAIR_ROW, evidence_from_rows
from analysis.evidence_state import DecisionState
from analysis.quantiles import quantile_bounds, quantile_ranks
from analysis.running import LATENCY_EDGES, LatencyHistogram
from bench.analysis.factories import NOW, experiment
from tunegate.experiments import Policy
from tunegate.records import ExperimentState, Stage

NAMES = ["task", "probe", "math", "pairwise", "exact"]
COUNTERS = {"pairwise": 40, "inconsistent": 3, "bad_scores": 2, "dead_letters": 1}


def _rows(n: int, seed: int, *, win: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = NOW - 600 + np.arange(n) * 0.05
    judged = np.zeros(n, dtype=JUDGE_ROW)
    judged["time"] = t + 0.01
    judged["score"] = rng.choice([0.0, 0.5, 1.0, 0.3, 0.9], n, p=[0.7 - win, 0.2, win, 0.05, 0.05])
    known = rng.random(n) < 0.4
    judged["candidate"] = np.where(known, rng.random(n) < 0.8, np.nan)
    judged["control"] = np.where(known, rng.random(n) < 0.6, np.nan)
    judged["category"] = rng.integers(0, 3, n)
    judged["scorer"] = rng.integers(3, 5, n)
    pairs = np.zeros(n, dtype=PAIR_ROW)
    pairs["time"] = t
    pairs["served"] = rng.random(n) < 0.3
    for arm in ("control", "candidate"):
        draw = rng.random(n)
        pairs[f"err_{arm}"] = np.where(draw < 0.05, -1, draw < 0.12)
        pairs[f"lat_{arm}"] = np.where(draw < 0.05, np.nan, rng.gamma(4, 0.05, n))
        pairs[f"tok_{arm}"] = np.where(draw < 0.05, np.nan, rng.integers(1, 300, n))
    return judged, pairs


def _fold(policy: Policy, judged: np.ndarray, pairs: np.ndarray, seed: int) -> DecisionState:
    """The rows in random pages (1 to 400 rows), as the store's folds would see them."""
    state = DecisionState.for_policy(policy)
    state.stage(0.0, 0.3)  # the stage the look will decide in, set before its pairs arrive
    rng = np.random.default_rng(seed)
    for rows, add in ((judged, state.add_judged_rows), (pairs, state.add_pair_rows)):
        at = 0
        while at < rows.size:
            step = int(rng.integers(1, 400))
            page = rows[at : at + step]
            add(page, NAMES) if add == state.add_judged_rows else add(page)  # type: ignore[call-arg]
            at += step
    return state


def _close(a: object, b: object, path: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def _without_latency(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["guardrails"] = [g for g in doc["guardrails"] if g["name"] != "latency_p95"]
    out["tests"] = [t for t in doc["tests"] if "latency" not in t["name"]]
    return out


@pytest.mark.parametrize(("n", "win", "stage"), [
    (0, 0.5, Stage.SHADOW), (7, 0.5, Stage.SHADOW), (150, 0.45, Stage.SHADOW),
    (3000, 0.5, Stage.AB), (3000, 0.35, Stage.AB), (3000, 0.1, Stage.SHADOW),
])  # fmt: skip
def test_state_checks_equal_the_array_checks(n: int, win: float, stage: Stage) -> None:
    config = experiment()
    policy = config.policy
    judged, pairs = _rows(n, seed=n, win=win)
    state = _fold(policy, judged, pairs, seed=n + 1)
    state = DecisionState.from_json(state.to_json())  # what the store keeps, round-tripped
    fb = FeedbackEvidence()
    evidence = evidence_from_rows("exp", pairs.tobytes(), judged.tobytes(), b"", NAMES, COUNTERS)
    array = gather_checks(policy, stage, 0.3, 0.0, evidence, NOW)
    running = checks_from_state(policy, stage, 0.3, 0.0, state, fb, COUNTERS, NOW)
    _close(_without_latency(running.to_json()), _without_latency(array.to_json()))
    assert running.pause_reasons == array.pause_reasons
    assert running.rollback_reasons == array.rollback_reasons
    live = ExperimentState(stage=stage, ab_weight=0.3, mirror_rate=1.0, version=1, updated_at=0.0)
    a = decide(config, live, evidence, NOW)
    b = decide_from_state(config, live, state, fb, COUNTERS, NOW)
    assert (a.action, a.stage_after, a.weight_after) == (b.action, b.stage_after, b.weight_after)
    if n:  # the latency bounds: the histogram's contain the order statistics' (never tighter)
        for arr_g, run_g in zip(array.guardrails, running.guardrails, strict=True):
            if arr_g.name == "latency_p95" and arr_g.interval and run_g.interval:
                lo, hi = arr_g.interval
                assert not run_g.interval[0] > lo + 1e-12  # nan: no bound on either side
                assert not run_g.interval[1] < hi - 1e-12
                assert (run_g.n_control, run_g.n_candidate) == (arr_g.n_control, arr_g.n_candidate)


def test_one_page_is_the_array_version() -> None:
    """The bulk load (everything as one page) and a paged fold agree."""
    policy = experiment().policy
    judged, pairs = _rows(2000, seed=3)
    bulk = DecisionState.for_policy(policy)
    bulk.stage(0.0, 0.3)
    bulk.add_judged_rows(judged, NAMES)
    bulk.add_pair_rows(pairs)
    paged = _fold(policy, judged, pairs, seed=4)
    _close(json.loads(bulk.to_json()), json.loads(paged.to_json()))


def test_histogram_bounds_contain_the_order_statistics() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(-1.5, 0.8, 5000)
    h = LatencyHistogram()
    for part in np.array_split(x, 7):
        h.add(part)
    assert h.n == x.size
    lo, hi = quantile_ranks(x.size, 0.95, 0.01)
    a_lo, a_est, a_hi = quantile_bounds(x, 0.95, 0.01)
    b_lo, b_est, b_hi = h.bounds(0.95, lo, hi)
    assert b_lo <= a_lo and b_hi >= a_hi
    width = LATENCY_EDGES[2] / LATENCY_EDGES[1]
    assert a_lo / b_lo <= width and b_hi / a_hi <= width  # at most one bin wider
    assert math.isclose(a_est, b_est, rel_tol=width - 1)


def test_bisected_quantile_ranks_equal_the_full_scan() -> None:
    from analysis.quantiles import _log_mixture

    def full(t: int, q: float, alpha: float) -> tuple[int, int]:
        s = np.arange(t + 1)
        threshold = math.log(1 / alpha)
        over = np.nonzero(_log_mixture(s, t, q, upper=True) >= threshold)[0]
        under = np.nonzero(_log_mixture(s, t, q, upper=False) >= threshold)[0]
        hi = int(over[0]) if over.size else t + 1
        return (int(under[-1]) + 1 if under.size else 0), min(hi, t + 1)

    sizes = [*range(1, 400, 7), 1000, 1999, 2000, 2001, 4321, 20_000, 123_457, 1_000_003]
    for t in sizes:
        for q, alpha in ((0.95, 0.0025), (0.5, 0.05), (0.99, 0.001)):
            assert quantile_ranks.__wrapped__(t, q, alpha) == full(t, q, alpha), (t, q, alpha)


def test_both_paths_apply_the_latency_slack() -> None:
    judged, pairs = _rows(3000, seed=5, win=0.5)
    evidence = evidence_from_rows("exp", pairs.tobytes(), judged.tobytes(), b"", NAMES, COUNTERS)
    for slack, holds in ((0.0, None), (1e6, True)):  # no slack: whatever the data say
        policy = experiment(latency_p95_slack_s=slack).policy
        state = _fold(policy, judged, pairs, seed=6)
        fb = FeedbackEvidence()
        array = gather_checks(policy, Stage.AB, 0.3, 0.0, evidence, NOW)
        running = checks_from_state(policy, Stage.AB, 0.3, 0.0, state, fb, COUNTERS, NOW)
        (a,) = [g for g in array.guardrails if g.name == "latency_p95"]
        (r,) = [g for g in running.guardrails if g.name == "latency_p95"]
        if holds is not None:
            assert a.holds is r.holds is holds and not a.breached and not r.breached
