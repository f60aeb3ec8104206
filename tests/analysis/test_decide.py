"""The decision table on built evidence: each row, its reason and its JSON evidence."""

from __future__ import annotations

import json

import numpy as np

from analysis.decide import decide
from analysis.evidence import Evidence, build_evidence
from tests.analysis.factories import NOW, experiment, pairs_and_verdicts
from tunegate.records import Action, ExperimentState, Pair, Stage, Verdict


def _evidence(*groups: tuple[list[Pair], list[Verdict]]) -> Evidence:
    pairs, verdicts = [], []
    for p, v in groups:
        pairs += p
        verdicts += v
    return build_evidence("exp", pairs, verdicts, [])


def test_task_improves_and_probes_hold_starts_the_ab():
    rng = np.random.default_rng(1)
    ev = _evidence(
        pairs_and_verdicts(rng, 400, "task", 0.8, 0.55),
        pairs_and_verdicts(rng, 200, "probe", 0.9, 0.9),
    )
    d = decide(experiment(), None, ev, NOW)
    assert d.action is Action.START_AB and d.stage_after is Stage.AB and d.weight_after == 0.01
    json.dumps(d.evidence)  # JSON-serializable as stored
    assert d.samples_needed is None


def test_probe_regression_beyond_tolerance_blocks_and_is_named():
    rng = np.random.default_rng(2)
    ev = _evidence(
        pairs_and_verdicts(rng, 400, "task", 0.85, 0.55),
        pairs_and_verdicts(rng, 60, "probe", 0.7, 0.88),  # ~18% accuracy drop
    )
    d = decide(experiment(), None, ev, NOW)
    assert d.action in (Action.CONTINUE, Action.ROLL_BACK)
    categories = d.evidence["categories"]
    assert isinstance(categories, list)
    blocked = [c["category"] for c in categories if c["beyond_tolerance"]]
    assert "'probe'" in d.reason and blocked == ["probe"]
    if d.action is Action.CONTINUE:
        assert d.samples_needed is not None


def test_small_drop_within_tolerance_does_not_block():
    rng = np.random.default_rng(3)
    ev = _evidence(
        pairs_and_verdicts(rng, 400, "task", 0.85, 0.55),
        pairs_and_verdicts(rng, 400, "probe", 0.99, 1.0),
    )
    d = decide(experiment(), None, ev, NOW)
    assert d.action is Action.START_AB, d.reason


def test_burn_in_continues_with_samples_needed():
    rng = np.random.default_rng(4)
    d = decide(experiment(), None, _evidence(pairs_and_verdicts(rng, 30, "task", 0.8, 0.5)), NOW)
    assert d.action is Action.CONTINUE
    assert d.samples_needed is not None and d.samples_needed >= 70
    assert "Burn-in" in d.reason


def test_clear_loss_rolls_back():
    rng = np.random.default_rng(5)
    d = decide(experiment(), None, _evidence(pairs_and_verdicts(rng, 300, "task", 0.3, 0.8)), NOW)
    assert d.action is Action.ROLL_BACK and d.stage_after is Stage.ROLLED_BACK
    assert "upper bound" in d.reason


def test_stale_evidence_pauses():
    rng = np.random.default_rng(6)
    ev = _evidence(pairs_and_verdicts(rng, 300, "task", 0.8, 0.5))
    d = decide(experiment(stale_after_seconds=60), None, ev, NOW + 3600)
    assert d.action is Action.PAUSE and "stale" in d.reason


def test_sample_ratio_mismatch_pauses_the_ab():
    rng = np.random.default_rng(7)
    ev = _evidence(pairs_and_verdicts(rng, 2000, "task", 0.8, 0.5, served_candidate_share=0.35))
    state = ExperimentState(stage=Stage.AB, ab_weight=0.25, updated_at=NOW - 3600)
    d = decide(experiment(), state, ev, NOW)
    assert d.action is Action.PAUSE and "sample-ratio mismatch" in d.reason


def test_ab_ramps_then_promotes_at_the_last_weight():
    rng = np.random.default_rng(8)
    ev = _evidence(pairs_and_verdicts(rng, 3000, "task", 0.8, 0.5, served_candidate_share=0.25))
    state = ExperimentState(stage=Stage.AB, ab_weight=0.25, updated_at=NOW - 3600)
    ramp = decide(experiment(), state, ev, NOW)
    assert ramp.action is Action.RAMP and ramp.weight_after == 0.5, ramp.reason
    ev = _evidence(pairs_and_verdicts(rng, 3000, "task", 0.8, 0.5, served_candidate_share=0.5))
    last = ExperimentState(stage=Stage.AB, ab_weight=0.5, updated_at=NOW - 3600)
    promote = decide(experiment(), last, ev, NOW)
    assert promote.action is Action.PROMOTE and promote.stage_after is Stage.PROMOTED, (
        promote.reason
    )
