"""The always-valid building blocks: betting tests, quantile bounds, their guards, by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.betting import betting_pvalue
from analysis.quantiles import quantile_ranks


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_betting_test_holds_alpha_uniformly_over_time(alternative):
    """1,000 seeded streams of 1,000 scores at the null, a look after every one of them."""
    rng = np.random.default_rng(17)
    x = rng.choice([0.0, 0.5, 1.0], size=(1000, 1000), p=[0.35, 0.3, 0.35])  # mean exactly 0.5
    p = betting_pvalue(x, 0.5, alternative)
    ever = (p <= 0.05).any(axis=1).mean()
    assert ever <= 0.05
    assert ever > 0.005  # and it is not trivially conservative


def test_betting_test_finds_a_clear_loss_early_and_never_gives_p_zero():
    losses = np.zeros(2)
    assert betting_pvalue(losses, 0.45, "less")[-1] > 0.3  # two losses prove nothing
    ten = betting_pvalue(np.zeros(10), 0.45, "less")[-1]
    assert 0.0 < ten < 1.0
    rng = np.random.default_rng(4)
    worse = rng.choice([0.0, 0.5, 1.0], size=(500, 200), p=[0.6, 0.2, 0.2])  # mean 0.3
    first = np.argmax(betting_pvalue(worse, 0.45, "less") <= 0.005, axis=1)
    assert np.median(first) < 100  # rolled back well before a 100-pair burn-in ends


def test_design_bet_stays_valid_at_the_worst_null():
    """The mixture with a fixed bet: 1,000 streams at the null's boundary, a look after each."""
    rng = np.random.default_rng(21)
    null = 0.475  # a category at exactly -5 % net: the hardest case the test must not reject
    x = rng.choice([0.0, 0.5, 1.0], size=(1000, 1000), p=[0.425, 0.2, 0.375])
    assert x.mean() == pytest.approx(null, abs=0.005)
    p = betting_pvalue(x, null, "less", design=0.6)
    assert (p <= 0.05).any(axis=1).mean() <= 0.05


def test_design_bet_finds_a_regressing_category_on_fewer_pairs():
    """200 pairs losing 55 %, winning 25 %: the design bet rejects more often at Holm's level."""
    rng = np.random.default_rng(22)
    x = rng.choice([0.0, 0.5, 1.0], size=(2000, 200), p=[0.55, 0.2, 0.25])
    level = 0.05 * 0.5 / 5  # the categories' share over five categories
    plug_in = (betting_pvalue(x, 0.475, "less")[:, -1] <= level).mean()
    design = (betting_pvalue(x, 0.475, "less", design=0.6)[:, -1] <= level).mean()
    assert design >= plug_in + 0.1
    assert design >= 0.8
    with pytest.raises(ValueError, match="design"):
        betting_pvalue(x[0], 0.475, "less", design=1.5)
    with pytest.raises(ValueError, match="design"):
        betting_pvalue(x[0], 0.475, "less", design=float("nan"))


def test_betting_mask_equals_the_substream():
    rng = np.random.default_rng(5)
    x = rng.random(300)
    mask = rng.random(300) < 0.3
    whole = betting_pvalue(x, 0.4, "less", mask=mask)[-1]
    assert whole == pytest.approx(betting_pvalue(x[mask], 0.4, "less")[-1])


def test_betting_refuses_scores_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        betting_pvalue([0.5, float("nan")], 0.5, "less")
    with pytest.raises(ValueError, match="null"):
        betting_pvalue([0.5], 1.0, "less")


def test_quantile_bounds_cover_uniformly_over_time():
    """400 seeded exponential streams; the p95 bounds at every sample size from 1 to 1,500."""
    rng = np.random.default_rng(9)
    alpha, q, n = 0.05, 0.95, 1500
    true_q = -np.log(1 - q)
    x = rng.exponential(size=(400, n))
    missed = np.zeros(400, dtype=bool)
    for t in range(20, n + 1, 20):
        lo, hi = quantile_ranks(t, q, alpha)
        ordered = np.sort(x[:, :t], axis=1)
        if lo >= 1:
            missed |= ordered[:, lo - 1] > true_q
        if hi <= t:
            missed |= ordered[:, hi - 1] < true_q
    assert missed.mean() <= 2 * alpha  # each side holds alpha; both together 2 alpha
    assert quantile_ranks(1500, q, alpha)[1] <= 1500  # and the upper side is bounded by then


def test_holm_never_runs_the_garbage_collector():
    """statsmodels' multipletests calls gc.collect() on every call; ours must not."""
    import gc

    from analysis.multiple import adjust

    collections: list[str] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        collections.append(phase)

    gc.disable()  # only an explicit gc.collect() can run now
    gc.callbacks.append(seen)
    try:
        for _ in range(20):
            adjust([0.01, 0.2, 0.03], 0.05, "holm")
            adjust([0.01, 0.2, 0.03], 0.05, "fdr_bh")
    finally:
        gc.callbacks.remove(seen)
        gc.enable()
    assert collections == []


def test_live_sequential_shows_a_clear_difference_and_waits_for_users():
    from analysis.live import live_sequential

    rng = np.random.default_rng(8)
    ctrl, cand = rng.normal(0.5, 0.2, 400), rng.normal(0.65, 0.2, 400)
    better = live_sequential(ctrl, cand, margin=0.02, alpha=0.0025, planned_n=300, min_users=30)
    assert better.superior and better.lower > 0 and better.lower < 0.15 < better.upper
    same = live_sequential(ctrl, rng.normal(0.5, 0.2, 400), 0.02, 0.0025, 300, 30)
    assert not same.superior and same.lower < 0 < same.upper
    few = live_sequential(ctrl[:20], cand[:20] + 1, 0.02, 0.0025, 300, 30)
    assert not few.superior and few.lower == -np.inf  # below the minimum number of users
