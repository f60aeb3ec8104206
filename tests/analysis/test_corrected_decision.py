"""The policy option judge_estimate=corrected: human labels, not the raw judge, gate the A/B."""

from __future__ import annotations

import json

import numpy as np

from analysis.decide import decide
from analysis.evidence import Evidence, build_evidence
from bench.analysis.factories import NOW, experiment, pairs_and_verdicts
from tunegate.records import Action, HumanLabel, Winner


def _evidence(human: Winner | None, labelled: int) -> Evidence:
    """400 pairs the judge says the candidate wins; ``labelled`` of them labelled ``human``."""
    rng = np.random.default_rng(8)
    pairs, verdicts = pairs_and_verdicts(rng, 400, "task", 0.85, 0.5)
    labels = [
        HumanLabel(
            pair_id=v.pair_id,
            experiment="exp",
            time=v.time + 1,
            # None: people agree with the judge wherever it was decisive
            winner=human if human is not None else (v.winner or Winner.TIE),
        )
        for v in verdicts[::7][:labelled]
    ]
    return build_evidence("exp", pairs, verdicts, [], labels=labels)


def test_raw_judge_starts_the_ab_whatever_people_say():
    d = decide(experiment(), None, _evidence(Winner.CONTROL, 50), NOW)
    assert d.action is Action.START_AB
    corrected = d.evidence["corrected"]
    assert isinstance(corrected, dict) and corrected["labelled"] == 50
    assert corrected["estimate"] < 0.5 < corrected["judge_mean"]
    assert "Corrected by 50 human labels" in d.reason


def test_corrected_estimate_holds_the_ab_when_people_disagree_with_the_judge():
    d = decide(experiment(judge_estimate="corrected"), None, _evidence(Winner.CONTROL, 50), NOW)
    assert d.action is Action.CONTINUE
    json.dumps(d.evidence)


def test_corrected_estimate_starts_the_ab_when_people_agree():
    d = decide(experiment(judge_estimate="corrected"), None, _evidence(None, 50), NOW)
    assert d.action is Action.START_AB
    corrected = d.evidence["corrected"]
    assert isinstance(corrected, dict) and corrected["agreement"] == 1.0


def test_too_few_labels_wait_and_say_so():
    policy = {"judge_estimate": "corrected", "min_labels": 30}
    d = decide(experiment(**policy), None, _evidence(None, 10), NOW)
    assert d.action is Action.CONTINUE
    assert "It decides once 30 pairs are labelled" in d.reason
    none = decide(experiment(**policy), None, _evidence(None, 0), NOW)
    assert none.action is Action.CONTINUE and none.evidence["corrected"] is None
    assert "No human labels yet" in none.reason


def test_labels_are_cut_by_time_like_the_other_streams():
    ev = _evidence(Winner.CONTROL, 50)
    early = ev.until(float(ev.labels.times[9]))
    assert len(early.labels.pair_ids) == 10


def test_only_the_always_valid_bound_decides_not_the_fixed_sample_interval():
    # with 50 agreeing labels the fixed-sample lower bound is about 0.65, the always-valid one
    # about 0.60: a bar between them must hold the A/B (the fixed one would have started it)
    policy = {"judge_estimate": "corrected", "min_labels": 30, "win_rate_bar": 0.62}
    d = decide(experiment(**policy), None, _evidence(None, 50), NOW)
    corrected = d.evidence["corrected"]
    assert isinstance(corrected, dict)
    assert corrected["cs_lower"] < 0.62 < corrected["lower"], corrected
    assert d.action is Action.CONTINUE
    assert "fixed-sample" in d.reason and "always-valid lower bound" in d.reason
    listed = d.evidence["tests"]
    assert isinstance(listed, list)
    test = next(t for t in listed if t["name"] == "judge_superiority_corrected")
    assert test["fired"] is False and test["interval"][0] == corrected["cs_lower"]
    lower = decide(experiment(**{**policy, "win_rate_bar": 0.55}), None, _evidence(None, 50), NOW)
    assert lower.action is Action.START_AB  # a bar below both: it starts
