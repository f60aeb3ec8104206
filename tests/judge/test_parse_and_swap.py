"""Verdict parsing (strict, fallbacks, failures) and the swap reconciliation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from judge.errors import ParseFailure
from judge.pairwise import candidate_score, direction, reconcile
from judge.parse import LABELS, SLOT_A_SCORE, expected_score, parse_verdict


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ('{"analysis": "A is right", "verdict": "A>>B"}', "A>>B"),
        ('```json\n{"analysis": "x", "verdict": "B > A"}\n```', "B>A"),
        ('Sure! {"analysis": "close", "verdict": "A=B"} done', "A=B"),
        ("A is better because ... [[B>>A]]", "B>>A"),
        ("Analysis: both fine.\nVerdict: A>B", "A>B"),
        ('{"analysis": "x", "verdict": "tie"}', "A=B"),
    ],
)
def test_labels_from_strict_json_and_fallbacks(raw, label):
    assert parse_verdict(raw).label == label


@pytest.mark.parametrize(
    "raw", ["", "both are good", '{"analysis": "x", "verdict": "maybe"}', "[[C>A]]", "A or B?"]
)
def test_unparseable_output_raises_never_a_tie(raw):
    with pytest.raises(ParseFailure) as info:
        parse_verdict(raw)
    assert info.value.raw == raw


def test_analysis_precedes_the_verdict():
    parsed = parse_verdict('{"analysis": "B misses the unit", "verdict": "A>B"}')
    assert parsed.analysis == "B misses the unit"


def test_expected_score_renormalises_over_labels():
    assert expected_score({}) is None
    assert expected_score({"A>>B": 0.0}) == 1.0
    two = expected_score({"A>>B": math.log(0.25), "B>>A": math.log(0.25), "junk": 5.0})
    assert two == pytest.approx(0.5)
    assert expected_score(dict.fromkeys(LABELS, 0.0)) == pytest.approx(0.5)


def test_scale_maps_to_candidate_scores():
    assert [SLOT_A_SCORE[lbl] for lbl in LABELS] == [1, 0.75, 0.5, 0.25, 0]
    assert candidate_score("candidate_first", 0.75) == 0.75
    assert candidate_score("control_first", 0.75) == 0.25


@given(st.sampled_from(LABELS), st.sampled_from(LABELS))
def test_swap_reconciliation_is_symmetric(first_label, second_label):
    a = candidate_score("candidate_first", SLOT_A_SCORE[first_label])
    b = candidate_score("control_first", SLOT_A_SCORE[second_label])
    score, inconsistent = reconcile(a, b)
    # swapping which arm is called "candidate" mirrors the score and keeps consistency
    mirrored, mirrored_inconsistent = reconcile(1 - b, 1 - a)
    assert mirrored == pytest.approx(1 - score)
    assert mirrored_inconsistent == inconsistent
    assert 0 <= score <= 1


@given(st.sampled_from(LABELS))
def test_a_judge_with_a_fixed_label_is_a_tie(label):
    a = candidate_score("candidate_first", SLOT_A_SCORE[label])
    b = candidate_score("control_first", SLOT_A_SCORE[label])
    score, inconsistent = reconcile(a, b)
    assert score == 0.5 and direction(score) == 0
    assert inconsistent == (label != "A=B")
