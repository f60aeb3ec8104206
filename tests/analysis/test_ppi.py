"""The judge-corrected win rate (analysis/ppi.py): the formula, its edges and its coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from analysis.ppi import corrected_win_rate, judge_only_interval
from bench.analysis.ppi_coverage import Scenario, repeated_looks, simulate


def test_plain_ppi_matches_the_formula_of_the_paper():
    human = np.array([1.0, 0.0, 1.0, 0.5, 1.0, 0.0])
    judge_l = np.array([1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    judge_u = np.array([1.0, 1.0, 0.0, 1.0, 0.5, 1.0, 1.0, 0.0])
    est = corrected_win_rate(human, judge_l, judge_u, 0.1, lam=1.0)
    rectifier = human - judge_l
    expected = judge_u.mean() + rectifier.mean()
    se = math.sqrt(judge_u.var(ddof=1) / judge_u.size + rectifier.var(ddof=1) / human.size)
    z = norm.ppf(0.95)
    assert est.estimate == pytest.approx(expected)
    assert est.lower == pytest.approx(max(0.0, expected - z * se))
    assert est.upper == pytest.approx(min(1.0, expected + z * se))
    assert (est.labelled, est.unlabelled, est.lam) == (6, 8, 1.0)
    assert est.agreement == pytest.approx(4 / 6)


def test_weight_zero_is_the_labels_alone():
    rng = np.random.default_rng(3)
    human = rng.integers(0, 2, 40).astype(float)
    est = corrected_win_rate(human, rng.random(40), rng.random(400), lam=0.0)
    half = norm.ppf(0.975) * human.std(ddof=1) / math.sqrt(40)
    assert est.estimate == pytest.approx(human.mean())
    assert est.upper - est.lower == pytest.approx(2 * half)


def test_a_perfect_judge_gets_full_weight_and_a_narrower_interval():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, 3000).astype(float)
    labelled, rest = truth[:100], truth[100:]
    tuned = corrected_win_rate(labelled, labelled, rest)
    alone = corrected_win_rate(labelled, labelled, rest, lam=0.0)
    assert tuned.lam > 0.9
    assert tuned.upper - tuned.lower < (alone.upper - alone.lower) / 3


def test_a_useless_judge_gets_no_weight():
    rng = np.random.default_rng(5)
    human = rng.integers(0, 2, 500).astype(float)
    noise = rng.integers(0, 2, 5000).astype(float)
    assert corrected_win_rate(human, noise[:500], noise[500:]).lam < 0.2


@pytest.mark.parametrize(
    ("human", "judge_l", "judge_u", "alpha", "match"),
    [
        ([1.0], [1.0], [0.0, 1.0], 0.05, "at least two"),
        ([1.0, 0.0], [1.0], [0.0], 0.05, "one length"),
        ([1.0, 2.0], [1.0, 0.0], [0.0], 0.05, "human"),
        ([1.0, 0.0], [1.0, math.nan], [0.0], 0.05, "judge_labelled"),
        ([1.0, 0.0], [1.0, 0.0], [-0.1], 0.05, "judge_unlabelled"),
        ([1.0, 0.0], [1.0, 0.0], [0.0], 1.0, "alpha"),
    ],
)
def test_bad_arguments_are_refused_by_name(human, judge_l, judge_u, alpha, match):
    with pytest.raises(ValueError, match=match):
        corrected_win_rate(human, judge_l, judge_u, alpha)


def test_judge_only_interval_refuses_one_score():
    with pytest.raises(ValueError, match="two judge scores"):
        judge_only_interval([0.5])


def test_monte_carlo_corrected_interval_covers_where_the_length_biased_judge_misses():
    # reduced cell of bench/analysis/ppi_coverage.py: 400 runs, seed 11
    result = simulate(Scenario(pairs=1000, labels=150), runs=400, seed=11)
    # nominal 95%: 400 runs give a standard error of about 1.1 points
    assert 0.92 <= result.corrected_coverage <= 0.98, result
    assert result.naive_coverage < 0.05, result
    assert abs(result.corrected_mean - 0.5) < 0.01
    assert result.naive_mean > 0.54


def test_the_always_valid_interval_contains_the_fixed_one():
    rng = np.random.default_rng(3)
    human = rng.integers(0, 2, 60).astype(float)
    judge = np.where(rng.random(60) < 0.8, human, 1 - human)
    est = corrected_win_rate(human, judge, rng.integers(0, 2, 900).astype(float))
    assert est.cs_lower < est.lower < est.estimate < est.upper < est.cs_upper


def test_repeated_looks_keep_the_always_valid_coverage_where_the_fixed_one_falls():
    # reduced cell of bench/analysis/ppi_coverage.py --looks: a look every 10 labels
    result = repeated_looks(Scenario(pairs=1000, labels=150), runs=150, seed=5)
    assert result.looks > 12, result
    assert result.always_valid_coverage >= 0.95, result
    assert result.fixed_coverage < 0.88, result


def test_unanimous_labels_do_not_make_the_always_valid_interval_a_point():
    ones = np.ones(10)
    est = corrected_win_rate(ones, ones, np.tile([1.0, 0.0, 1.0], 300))
    assert est.upper - est.lower < 0.05  # the fixed-sample interval believes ten labels
    assert est.estimate - est.cs_lower > 0.1, est  # about 0.17
