"""Paired statistics of the offline gate against hand-computed cases, scipy and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from analysis.offline.paired import (
    Comparison,
    Resampler,
    binary_sd,
    bootstrap,
    holm,
    holm_adjust,
    holm_gate,
    items_needed,
    mcnemar,
    mcnemar_two_sided,
    minimum_detectable_effect,
    permutation,
    preference,
    sign_flip_p,
    verdict,
)


def _table(both: int, ctrl_only: int, cand_only: int, neither: int):
    control = [1] * both + [1] * ctrl_only + [0] * cand_only + [0] * neither
    candidate = [1] * both + [0] * ctrl_only + [1] * cand_only + [0] * neither
    return np.array(control), np.array(candidate)


def test_mcnemar_hand_case_and_statsmodels():
    control, candidate = _table(both=5, ctrl_only=2, cand_only=8, neither=5)
    c = mcnemar(control, candidate, metric="accuracy")
    assert c.n == 20 and c.test == "mcnemar" and c.kind == "superiority"
    assert c.control == pytest.approx(7 / 20) and c.candidate == pytest.approx(13 / 20)
    assert c.diff == pytest.approx(6 / 20)
    # P(X >= 8 | 10 discordant, 1/2) = (45 + 10 + 1) / 1024
    assert c.p == pytest.approx(56 / 1024)
    assert c.p_regression == pytest.approx(1 - 11 / 1024 + 0)  # P(X <= 8) = 1 - P(X >= 9)
    assert mcnemar_two_sided(control, candidate) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_two_sided(control, candidate) == pytest.approx(2 * min(c.p, c.p_regression))
    assert c.ci_low < c.diff < c.ci_high


def test_mcnemar_interval_agrees_with_its_test():
    rng = np.random.default_rng(7)
    for _ in range(200):
        b, c_, both = rng.integers(0, 25, size=3)
        control, candidate = _table(int(both), int(c_), int(b), 10)
        res = mcnemar(control, candidate, metric="m", alpha=0.05)
        if b + c_ == 0:
            assert res.p == 1 and res.ci_low == res.ci_high == 0
            continue
        assert (res.ci_low > 0) == (res.p < 0.05)
        assert (res.ci_high < 0) == (res.p_regression < 0.05)


def test_mcnemar_refuses_bad_input():
    with pytest.raises(ValueError, match="binary"):
        mcnemar([0.5, 1], [1, 1], metric="m")
    with pytest.raises(ValueError, match="pair item by item"):
        mcnemar([0, 1], [1], metric="m")
    with pytest.raises(ValueError, match="no items"):
        mcnemar([], [], metric="m")
    with pytest.raises(ValueError, match="alpha"):
        mcnemar([0], [1], metric="m", alpha=0.7)


def test_bootstrap_identical_arms_is_neither_better_nor_worse():
    x = np.linspace(0, 1, 50)
    c = bootstrap(x, x, metric="rouge_l")
    assert c.diff == 0 and c.ci_low == c.ci_high == 0
    assert c.p == 1 and c.p_regression == 1
    assert verdict(c) == "inconclusive"
    assert items_needed(c) is None


def test_bootstrap_matches_scipy_paired_bootstrap_and_the_analytic_se():
    rng = np.random.default_rng(3)
    control = rng.random(400)
    candidate = np.clip(control + rng.normal(0.05, 0.3, 400), 0, 1)
    c = bootstrap(control, candidate, metric="score", alpha=0.025, seed=1)
    assert c.diff == pytest.approx(candidate.mean() - control.mean())
    ref = stats.bootstrap(
        (control, candidate),
        lambda a, b, axis=-1: np.mean(b, axis=axis) - np.mean(a, axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=0.95,
        method="percentile",
        n_resamples=4000,
        rng=np.random.default_rng(2),
    )
    assert c.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert c.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.006)
    analytic = np.std(candidate - control, ddof=1) / math.sqrt(400)
    assert c.se == pytest.approx(analytic, rel=0.06)
    # the two one-sided p-values of the same boundary sum to 1 (+ ties, + the +1 correction)
    assert c.p + c.p_regression == pytest.approx(1, abs=0.001)


def test_bootstrap_corpus_statistic_is_a_ratio_of_sums():
    # per item: (hits, total) -> corpus precision sum(hits) / sum(total), as BLEU's counts work
    control = np.array([[1, 4], [0, 2], [3, 3], [1, 1]], dtype=float)
    candidate = np.array([[2, 4], [2, 2], [3, 3], [0, 1]], dtype=float)

    def precision(means):
        return means[..., 0] / means[..., 1]

    c = bootstrap(control, candidate, metric="precision", statistic=precision, seed=0)
    assert c.control == pytest.approx(5 / 10) and c.candidate == pytest.approx(7 / 10)
    assert c.diff == pytest.approx(0.2)
    r = bootstrap(
        control,
        candidate,
        metric="precision",
        statistic=precision,
        scale="relative",
        kind="non_inferiority",
        margin=0.05,
    )
    assert r.scale == "relative" and r.diff == pytest.approx(0.7 / 0.5 - 1)


def test_relative_scale_falls_back_when_the_control_scores_zero():
    c = bootstrap([0, 0, 0], [0, 1, 0], metric="m", scale="relative")
    assert c.scale == "absolute" and c.diff == pytest.approx(1 / 3)


def test_resampler_is_seeded_and_shared():
    values = np.arange(30, dtype=float).reshape(10, 3)
    one = Resampler(10, resamples=200, seed=5).means(values)
    two = Resampler(10, resamples=200, seed=5).means(values)
    assert one.shape == (200, 3) and np.array_equal(one, two)
    # each row is a resample of whole items: column 1 - column 0 is 1 in every item
    assert np.allclose(one[:, 1] - one[:, 0], 1)
    with pytest.raises(ValueError, match="items"):
        Resampler(10, resamples=200).means(values[:5])


def test_permutation_exact_small_case_and_scipy():
    c = permutation([0, 0, 0, 0], [1, 2, 1, 3], metric="judge")
    assert c.p == pytest.approx(1 / 16)  # all 2**4 sign flips enumerated, one as large
    assert c.p_regression == pytest.approx(1.0)
    rng = np.random.default_rng(11)
    a = rng.normal(5, 1, 60)
    b = a + rng.normal(0.15, 1, 60)
    c = permutation(a, b, metric="judge", resamples=2000, seed=4)
    ref = stats.ttest_rel(b, a, alternative="greater")
    assert c.p == pytest.approx(ref.pvalue, abs=0.03)
    shifted = permutation(a, b, metric="judge", kind="non_inferiority", margin=0.2, resamples=2000)
    assert shifted.p < c.p / 2 and shifted.margin == 0.2


def test_preference_counts_wins_and_ties():
    outcomes = [1] * 12 + [-1] * 3 + [0] * 5
    c = preference(outcomes, metric="pairwise", resamples=2000)
    assert c.candidate == pytest.approx(12 / 20) and c.control == pytest.approx(3 / 20)
    assert c.diff == pytest.approx(9 / 20)
    # ties carry no sign: the exact sign test on the 15 decisive pairs
    assert c.p == pytest.approx(stats.binomtest(12, 15, alternative="greater").pvalue, abs=0.02)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        preference([2], metric="pairwise")


def _c(p: float, q: float, diff: float = 0.0) -> Comparison:
    return Comparison(
        metric="m",
        category="all",
        n=100,
        control=0.5,
        candidate=0.5 + diff,
        diff=diff,
        ci_low=diff - 0.1,
        ci_high=diff + 0.1,
        p=p,
        kind="non_inferiority",
        margin=0.05,
        test="bootstrap",
        se=0.05,
        p_regression=q,
    )


def test_holm_matches_statsmodels_per_family():
    ps = [0.01, 0.04, 0.03, 0.2]
    qs = [0.5, 0.001, 0.02, 0.9]
    adjusted = holm([_c(p, q) for p, q in zip(ps, qs, strict=True)], alpha=0.05)
    assert [c.p_adjusted for c in adjusted] == pytest.approx(
        list(multipletests(ps, method="holm")[1])
    )
    assert [c.p_regression_adjusted for c in adjusted] == pytest.approx(
        list(multipletests(qs, method="holm")[1])
    )
    # 0.04 alone passes; after Holm (x3 in the second step) it no longer does
    assert verdict(_c(0.04, 0.9)) == "pass" and verdict(adjusted[1]) != "pass"


def test_verdict_rules():
    assert verdict(_c(0.01, 0.99, diff=0.02)) == "pass"
    assert verdict(_c(0.99, 0.01, diff=-0.2), fail_drop=0.15) == "fail"
    assert verdict(_c(0.99, 0.01, diff=-0.08), fail_drop=0.15) == "warn"
    assert verdict(_c(0.99, 0.01, diff=-0.08)) == "fail"  # superiority: any regression fails
    assert verdict(_c(0.3, 0.4)) == "inconclusive"


def test_minimum_detectable_effect_round_trips_statsmodels_power():
    mde = minimum_detectable_effect(200, alpha=0.05, power=0.8, sd=0.4)
    power = TTestPower().power(effect_size=mde / 0.4, nobs=200, alpha=0.05, alternative="larger")
    assert power == pytest.approx(0.8, abs=1e-4)
    assert minimum_detectable_effect(200, tests=10) > minimum_detectable_effect(200)
    assert minimum_detectable_effect(800) == pytest.approx(minimum_detectable_effect(200) / 2, 0.02)
    assert binary_sd(0.25) == 0.5
    with pytest.raises(ValueError):
        minimum_detectable_effect(1)


def test_items_needed_reaches_the_power_it_promises():
    c = _c(0.3, 0.7, diff=0.02)  # distance 0.07 from the margin, sd 0.5
    more = items_needed(c, alpha=0.05, power=0.8)
    assert more is not None and more > 0
    total = c.n + more
    z = 0.07 / (0.5 / math.sqrt(total))
    assert z >= stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    z_before = 0.07 / (0.5 / math.sqrt(total - 1))
    assert z_before < stats.norm.ppf(0.95) + stats.norm.ppf(0.8)


def test_sign_flip_matches_scipy_permutation_test():
    rng = np.random.default_rng(5)
    for n, resamples in ((8, 9999), (12, 9999), (200, 20000)):
        d = rng.normal(0.1, 1, n)
        ours = sign_flip_p(d, resamples=resamples, seed=1)
        for alternative, mine in zip(("greater", "less"), ours, strict=True):
            ref = stats.permutation_test(
                (d,),
                lambda x, axis=-1: np.mean(x, axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=resamples,
                alternative=alternative,
                rng=np.random.default_rng(2),
            ).pvalue
            exact = 2**n <= resamples
            assert mine == pytest.approx(ref, abs=1e-12 if exact else 0.01), (n, alternative)


def test_holm_adjust_and_the_gate_family():
    rng = np.random.default_rng(8)
    for _ in range(8):
        p = rng.random(int(rng.integers(1, 15))) ** 3
        assert holm_adjust(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm_adjust([]) == []
    task = [_c(0.01, 0.5), _c(0.2, 0.03)]
    probes = [_c(0.02, 0.02), _c(0.5, 0.6)]
    t, pr = holm_gate(task, probes)
    # pass claims adjusted within each family of two; regression claims across all four
    assert [c.p_adjusted for c in t] == pytest.approx([0.02, 0.2])
    assert [c.p_adjusted for c in pr] == pytest.approx([0.04, 0.5])
    regression = [c.p_regression_adjusted for c in t + pr]
    assert regression == pytest.approx(
        list(multipletests([0.5, 0.03, 0.02, 0.6], method="holm")[1])
    )


def test_aa_false_fail_and_false_pass_stay_at_alpha():
    """Reduced A/A study (the full one: python -m bench.offline.stats --aa-runs 2000)."""
    from bench.offline.aa import AAConfig, run_aa

    result = run_aa(AAConfig(runs=200, resamples=1000, permutation_resamples=999, seed=7))
    assert result.runs == 200
    # 200 runs: the observed rate of a true 5 % lies below 0.085 with 95 % probability
    assert result.false_fail <= 0.085
    assert result.false_pass <= 0.085


def test_the_stats_bench_workload_runs_small():
    from bench.offline.stats import _data, baseline_statistics, gate_statistics

    data = _data(400, seed=1)
    comparisons = gate_statistics(data, resamples=200, seed=1)
    assert len(comparisons) == 120
    assert {c.test for c in comparisons} == {"mcnemar", "bootstrap", "permutation"}
    assert all(c.p_regression_adjusted is not None for c in comparisons)
    assert baseline_statistics(data, resamples=200, seed=1) > 0
