"""Always-valid statistics against independent oracles (scipy quadrature, savvi) and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from savvi.linear_regression import LinearRegression
from scipy.integrate import quad
from scipy.stats import norm

from analysis.sequential import (
    asymptotic_cs,
    eb_cs,
    msprt_lower_bound,
    msprt_pvalue,
    normal_mixture_log_evalue,
)


@pytest.mark.parametrize(("s", "t"), [(3.0, 50.0), (-4.0, 80.0), (12.0, 400.0), (0.0, 10.0)])
def test_mixture_evalue_matches_numerical_integration(s, t):
    m, tau = 0.3, 0.075

    def integrand(lam):
        return math.exp(lam * s - lam * lam * t / 2) * norm.pdf(lam, m, tau) / norm.sf(0, m, tau)

    expected, _ = quad(integrand, 0, m + 12 * tau, points=[m])
    got = float(np.exp(normal_mixture_log_evalue(s, t, m, tau * tau)))
    assert got == pytest.approx(expected, rel=1e-6)


def test_evalue_stays_small_when_the_mean_is_far_below_the_null():
    x = np.zeros(500)
    x[-100:] = 1.0  # the last prefixes have mean up to 0.2
    assert msprt_pvalue(x, 0.5, 0.05)[-1] == 1.0
    assert msprt_lower_bound(x, 0.05, 0.05)[-1] < 0.25


def test_asymptotic_cs_agrees_with_savvi_anytime_valid_t_interval():
    rng = np.random.default_rng(7)
    x = rng.choice([0.0, 0.5, 1.0], size=2000, p=[0.3, 0.3, 0.4])  # true mean 0.55
    oracle = LinearRegression(alpha=0.05, p=1)
    with np.errstate(all="ignore"):  # savvi divides by zero before it has two points
        for value in x:
            oracle.update(np.array([value, 1.0]))
            oracle.infer()
    savvi_lo, savvi_hi = oracle.conf_int[0]
    lo, hi = asymptotic_cs(x, 0.05, planned_n=500)
    ours = hi[-1] - lo[-1]
    assert lo[-1] < 0.55 < hi[-1] and savvi_lo < 0.55 < savvi_hi
    assert 0.6 < ours / (savvi_hi - savvi_lo) < 1.6  # same order; different mixtures
    assert abs((lo[-1] + hi[-1]) / 2 - (savvi_lo + savvi_hi) / 2) < 0.01


def test_msprt_rejects_a_clear_effect_about_when_savvi_does():
    rng = np.random.default_rng(11)
    x = rng.choice([0.0, 0.5, 1.0], size=3000, p=[0.25, 0.3, 0.45])  # mean 0.6
    p_ours = msprt_pvalue(x, 0.5, 0.05, burn_in=1)
    oracle = LinearRegression(alpha=0.05, p=1)
    first_savvi = None
    with np.errstate(all="ignore"):  # savvi divides by zero before it has two points
        for i, value in enumerate(x - 0.5):
            oracle.update(np.array([value, 1.0]))
            oracle.infer()
            if oracle.p_value[0] <= 0.05:
                first_savvi = i + 1
                break
    first_ours = int(np.argmax(p_ours <= 0.05)) + 1
    assert first_savvi is not None and p_ours[-1] <= 0.05
    assert 0.25 < first_ours / first_savvi < 4


def test_confidence_sequences_cover_uniformly_in_simulation():
    """Running coverage over all 600 looks, 400 seeded streams (run count shown in the id)."""
    rng = np.random.default_rng(3)
    runs, n, mean = 400, 600, 0.5
    x = rng.choice([0.0, 0.5, 1.0], size=(runs, n), p=[0.35, 0.3, 0.35])
    eb_lo, eb_hi = eb_cs(x, 0.05)
    eb_miss = ((eb_lo > mean) | (eb_hi < mean)).any(axis=1).mean()
    as_lo, as_hi = asymptotic_cs(x, 0.05, planned_n=300)
    look = np.arange(1, n + 1) >= 100
    as_miss = (((as_lo > mean) | (as_hi < mean)) & look).any(axis=1).mean()
    assert eb_miss <= 0.05 and as_miss <= 0.05 + 0.02


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="alpha"):
        eb_cs([0.5], alpha=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        eb_cs([1.5], alpha=0.05)
    with pytest.raises(ValueError, match="empty"):
        asymptotic_cs([], 0.05, 100)
