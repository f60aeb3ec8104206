"""Routing is pure: every stage's arm, stickiness and weight proportions checked statistically."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from proxy.routing import choose_arm, hash_key, key_point, should_mirror
from tunegate.records import Arm, Stage

KEYS = [f"user-{i}" for i in range(10_000)]
ALPHA = 0.001  # each proportion test rejects a correct router one time in a thousand


@pytest.mark.parametrize(
    ("stage", "arm"),
    [
        (Stage.SHADOW, Arm.CONTROL),
        (Stage.PROMOTED, Arm.CANDIDATE),
        (Stage.ROLLED_BACK, Arm.CONTROL),
        (Stage.PAUSED, Arm.CONTROL),
    ],
)
def test_fixed_stages_ignore_weight_and_key(stage: Stage, arm: Arm):
    for weight in (0.0, 0.5, 1.0):
        assert {choose_arm(stage, weight, hash_key(k)) for k in KEYS[:200]} == {arm}
        assert choose_arm(stage, weight, None) is arm


@pytest.mark.parametrize("weight", [0.01, 0.05, 0.25, 0.5])
def test_ab_sticky_share_matches_weight(weight: float):
    hits = sum(choose_arm(Stage.AB, weight, hash_key(k)) is Arm.CANDIDATE for k in KEYS)
    assert binomtest(hits, len(KEYS), weight).pvalue > ALPHA, hits


@pytest.mark.parametrize("weight", [0.1, 0.5])
def test_ab_without_key_is_uniform_per_request(weight: float):
    rng = random.Random(7)
    hits = sum(choose_arm(Stage.AB, weight, None, rng) is Arm.CANDIDATE for _ in range(10_000))
    assert binomtest(hits, 10_000, weight).pvalue > ALPHA, hits


def test_ab_extremes():
    assert {choose_arm(Stage.AB, 0.0, hash_key(k)) for k in KEYS[:500]} == {Arm.CONTROL}
    assert {choose_arm(Stage.AB, 1.0, hash_key(k)) for k in KEYS[:500]} == {Arm.CANDIDATE}


def test_key_points_are_uniform():
    # ten equal bins of [0, 1): each should hold a tenth of the keys
    bins = [0] * 10
    for k in KEYS:
        bins[int(key_point(hash_key(k)) * 10)] += 1
    for count in bins:
        assert binomtest(count, len(KEYS), 0.1).pvalue > ALPHA / 10, bins


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=30), st.randoms())
def test_sticky_assignment_is_stable_under_request_order(keys: list[str], rnd: random.Random):
    first = {k: choose_arm(Stage.AB, 0.3, hash_key(k)) for k in keys}
    shuffled = list(keys)
    rnd.shuffle(shuffled)
    assert {k: choose_arm(Stage.AB, 0.3, hash_key(k)) for k in shuffled} == first


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.floats(0, 1), st.floats(0, 1))
def test_raising_the_weight_never_moves_a_user_back_to_control(key: str, a: float, b: float):
    low, high = sorted((a, b))
    if choose_arm(Stage.AB, low, hash_key(key)) is Arm.CANDIDATE:
        assert choose_arm(Stage.AB, high, hash_key(key)) is Arm.CANDIDATE


def test_hash_hides_the_key():
    digest = hash_key("alice@example.com")
    assert "alice" not in digest and len(digest) == 32
    assert digest == hash_key("alice@example.com") != hash_key("bob@example.com")


@pytest.mark.parametrize("rate", [0.0, 0.2, 1.0])
def test_mirror_rate(rate: float):
    rng = random.Random(3)
    hits = sum(should_mirror(rate, rng) for _ in range(10_000))
    if rate in (0.0, 1.0):
        assert hits == rate * 10_000
    else:
        assert binomtest(hits, 10_000, rate).pvalue > ALPHA, hits
