"""Fixed-sample statistics against reference values: scipy, closed forms, spotify-confidence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm

from analysis.guardrails import error_rate_guardrail, latency_p95_guardrail, tokens_guardrail
from analysis.multiple import adjust, holm
from analysis.power import fixed_horizon_n, minimum_detectable_effect, samples_needed
from analysis.proportions import category_summaries, paired_correctness, win_rate_summary
from analysis.quantiles import quantile_bounds
from analysis.srm import sample_ratio_mismatch, srm_log_bayes_factor


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


def _served(rng, control: int, candidate: int):
    return rng.permutation(np.r_[np.zeros(control), np.ones(candidate)])


def test_srm_flags_a_broken_split_only():
    rng = np.random.default_rng(0)
    fine = sample_ratio_mismatch(_served(rng, 5000, 5100), 0.5, alpha=0.001)
    assert fine.mismatch is False and (fine.control, fine.candidate) == (5000, 5100)
    broken = sample_ratio_mismatch(_served(rng, 5000, 5600), 0.5, alpha=0.001)
    assert broken.mismatch and broken.p_value < 0.001
    assert sample_ratio_mismatch(np.ones(60), 0.5, alpha=0.05, min_sample=20).mismatch
    few = sample_ratio_mismatch(np.ones(60), 0.5, alpha=0.05, min_sample=61)
    assert few.p_value < 0.05 and not few.mismatch  # below its minimum sample it never acts


def test_srm_bayes_factor_matches_savvi_multinomial():
    from savvi.multinomial import Multinomial

    rng = np.random.default_rng(3)
    served = (rng.random(400) < 0.3).astype(float)
    ours = srm_log_bayes_factor(served, 0.25)
    oracle = Multinomial(0.05, np.array([0.75, 0.25]))
    theirs = []
    for s in served:
        oracle.update(np.array([1 - int(s), int(s)]))
        theirs.append(np.log(oracle.odds))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_power_matches_the_normal_formula_and_inverts():
    n = fixed_horizon_n(0.4, 0.05, 0.05, 0.8)
    assert n == pytest.approx(((norm.ppf(0.95) + norm.ppf(0.8)) * 0.4 / 0.05) ** 2, rel=1e-3)
    assert minimum_detectable_effect(0.4, n, 0.05, 0.8) == pytest.approx(0.05, rel=1e-3)
    from statsmodels.stats.power import NormalIndPower

    reference = NormalIndPower().solve_power(
        effect_size=0.05 / 0.4, alpha=0.05, power=0.8, ratio=0, alternative="larger"
    )
    assert n == pytest.approx(reference, rel=1e-6)
    far, near = (
        samples_needed(100, 0.0, 0.4, 0.05, 0.05),
        samples_needed(100, 0.15, 0.4, 0.05, 0.05),
    )
    assert far > near >= 0


def test_holm_is_step_down():
    assert holm({"a": 0.01, "b": 0.04}, 0.05) == {"a": True, "b": True}
    assert holm({"a": 0.03, "b": 0.04}, 0.05) == {"a": False, "b": False}


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_numpy_adjustment_matches_statsmodels(method):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(2)
    for size in (1, 2, 5, 17):
        p = rng.random(size) ** 3
        p[0] = p[-1]  # a tie
        expected = multipletests(p, alpha=0.05, method=method)[1]
        np.testing.assert_allclose(adjust(list(p), 0.05, method), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="p_values"):
        adjust([0.1, float("nan")], 0.05)


def test_guardrails_see_breaches_and_hold():
    rng = np.random.default_rng(1)
    ctrl_err = (rng.random(1000) < 0.005).astype(float)
    bad = error_rate_guardrail(ctrl_err, (rng.random(1000) < 0.06).astype(float), 0.01, 0.05)
    assert bad.breached and not bad.holds and bad.p_breach is not None and bad.p_breach < 0.05
    fine = error_rate_guardrail(ctrl_err, ctrl_err[::-1].copy(), 0.01, 0.05)
    assert fine.holds and not fine.breached
    few = error_rate_guardrail(np.zeros(5), np.ones(5), 0.01, 0.05, min_sample=20)
    assert not few.breached  # five errors in a row: below the minimum sample nothing acts
    ctrl = rng.lognormal(0, 0.3, 2000)
    assert latency_p95_guardrail(ctrl, ctrl * 2, 0.2, 0.05).breached
    assert latency_p95_guardrail(ctrl, rng.lognormal(0, 0.3, 2000), 0.2, 0.05).holds
    # sub-millisecond p95s (cached answers) five times apart: noise a relative margin cannot
    # absorb; an absolute slack does, and a real slowdown still breaches beyond it
    fast = rng.lognormal(np.log(1e-4), 0.3, 2000)
    assert not latency_p95_guardrail(fast, fast * 5, 1.0, 0.05).holds
    assert latency_p95_guardrail(fast, fast * 5, 1.0, 0.05, slack_s=0.01).holds
    slow = latency_p95_guardrail(fast, fast + 0.1, 1.0, 0.05, slack_s=0.01)
    assert slow.breached and not slow.holds
    lo, est, hi = quantile_bounds(np.arange(1000.0), 0.95, 0.025)
    assert lo < est < hi and lo > 900 and hi < 990
    tok = rng.poisson(100, 500).astype(float)
    assert tokens_guardrail(tok, tok * 1.5, 0.2, 0.05, planned_n=400).breached
    assert tokens_guardrail(tok, tok[::-1].copy(), 0.2, 0.05, planned_n=400).holds
