"""Fixed-sample statistics against reference values: scipy, closed forms, spotify-confidence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from analysis.guardrails import error_rate_guardrail, latency_p95_guardrail, quantile_bounds
from analysis.live import clustered_difference, cuped_difference, user_test
from analysis.multiple import holm
from analysis.power import fixed_horizon_n, minimum_detectable_effect, samples_needed
from analysis.proportions import category_summaries, paired_correctness, win_rate_summary
from analysis.srm import sample_ratio_mismatch


def test_win_rate_summary_matches_binomial_references():
    scores = [1.0] * 30 + [0.0] * 15 + [0.5] * 5
    s = win_rate_summary(scores)
    assert (s.wins, s.losses, s.ties, s.n) == (30, 15, 5, 50)
    assert s.win_rate == pytest.approx(32.5 / 50)
    assert s.sign_test_p == pytest.approx(binomtest(30, 45).pvalue)
    exact = binomtest(30, 45).proportion_ci(0.95, method="exact")
    assert s.clopper_pearson == pytest.approx((exact.low, exact.high))
    wilson = binomtest(30, 45).proportion_ci(0.95, method="wilson")
    assert s.wilson == pytest.approx((wilson.low, wilson.high))


def test_categories_get_bh_q_values():
    scores = [1.0] * 40 + [0.0] * 5 + [1.0] * 10 + [0.0] * 10
    cats = ["task"] * 45 + ["probe"] * 20
    rows = {c.category: c for c in category_summaries(scores, cats)}
    assert rows["probe"].q_value == pytest.approx(1.0)
    assert rows["task"].q_value == pytest.approx(min(1.0, 2 * rows["task"].summary.sign_test_p))


def test_mcnemar_on_paired_correctness():
    cand = [1] * 20 + [1] * 12 + [0] * 3 + [0] * 5
    ctrl = [1] * 20 + [0] * 12 + [1] * 3 + [0] * 5
    r = paired_correctness(cand, ctrl)
    assert (r.candidate_only, r.control_only) == (12, 3)
    assert r.p_value == pytest.approx(binomtest(3, 15).pvalue)


def test_srm_flags_a_broken_split_only():
    assert sample_ratio_mismatch(5000, 5100, 0.5).mismatch is False
    broken = sample_ratio_mismatch(5000, 5600, 0.5)
    assert broken.mismatch and broken.p_value < 0.001


def test_power_matches_the_normal_formula_and_inverts():
    n = fixed_horizon_n(0.4, 0.05, 0.05, 0.8)
    assert n == pytest.approx(((norm.ppf(0.95) + norm.ppf(0.8)) * 0.4 / 0.05) ** 2, rel=1e-3)
    assert minimum_detectable_effect(0.4, n, 0.05, 0.8) == pytest.approx(0.05, rel=1e-3)
    far, near = (
        samples_needed(100, 0.0, 0.4, 0.05, 0.05),
        samples_needed(100, 0.15, 0.4, 0.05, 0.05),
    )
    assert far > near >= 0


def test_holm_is_step_down():
    assert holm({"a": 0.01, "b": 0.04}, 0.05) == {"a": True, "b": True}
    assert holm({"a": 0.03, "b": 0.04}, 0.05) == {"a": False, "b": False}


def test_guardrails_see_breaches_and_hold():
    bad = error_rate_guardrail(5, 1000, 60, 1000, margin=0.01, alpha=0.05)
    assert bad.breached and not bad.holds
    fine = error_rate_guardrail(10, 2000, 9, 2000, margin=0.01, alpha=0.05)
    assert fine.holds and not fine.breached
    rng = np.random.default_rng(1)
    ctrl = rng.lognormal(0, 0.3, 2000)
    assert latency_p95_guardrail(ctrl, ctrl * 2, 0.2, 0.05).breached
    assert latency_p95_guardrail(ctrl, rng.lognormal(0, 0.3, 2000), 0.2, 0.05).holds
    lo, est, hi = quantile_bounds(np.arange(1000.0), 0.95, 0.025)
    assert lo < est < hi and lo > 930 and hi < 970


def test_live_tests_with_users_as_units():
    rng = np.random.default_rng(5)
    pre_c, pre_t = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    ctrl = pre_c + rng.normal(0, 0.5, 300)
    cand = pre_t + 0.2 + rng.normal(0, 0.5, 300)
    welch = user_test(ctrl, cand, margin=0.05)
    cuped = cuped_difference(ctrl, cand, pre_c, pre_t, margin=0.05)
    assert cuped.std_error < 0.6 * welch.std_error  # the covariate explains most variance
    assert cuped.p_superior < 0.001 and cuped.difference == pytest.approx(0.2, abs=0.1)
    users = [f"u{i % 50}" for i in range(1000)]
    arms = [i % 50 < 25 for i in range(1000)]
    effects = rng.normal(0, 1, 50)
    values = [effects[i % 50] + rng.normal() for i in range(1000)]
    clustered = clustered_difference(arms, values, users, margin=0.1)
    naive_se = np.sqrt(2 * np.var(values) / 500)
    assert clustered.std_error > 1.5 * naive_se  # users repeat: clustering widens the error
