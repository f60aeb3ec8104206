"""Betting e-processes for the mean of scores in [0, 1]: always-valid from the first observation.

A one-sided test of H0: mean >= ``null`` (``alternative="less"``) or H0: mean <= ``null``
(``alternative="greater"``) bets a predictable fraction of its wealth on the payoff
y = x - null (or null - x) at every observation (Waudby-Smith & Ramdas 2023, "Estimating means
of bounded random variables by betting"). Under H0 the wealth is a nonnegative supermartingale
whatever the distribution of the scores, so by Ville's inequality the always-valid p-value
``1 / running max of the wealth`` stays above alpha with probability 1 - alpha at every sample
size at once. The bet is the approximate growth-rate-optimal plug-in (aGRAPA): mean payoff over
mean squared payoff so far, from one neutral pseudo-observation, capped at half the wealth that
the worst payoff could lose. Two losses in a row therefore move the wealth by a bounded factor:
zero variance never gives p = 0.

A test that knows the size of loss it must catch quickly can add a *design bet*: a fixed bet
``design`` on every observation. The wealth is then the mixture ``(1 - w) x plug-in + w x fixed``
with ``w = DESIGN_WEIGHT``; a mixture of nonnegative supermartingales is one, so the test stays
valid whatever the bet. The fixed bet wins near its design alternative (no early estimation
noise: the plug-in bets almost nothing until it has seen some payoffs), the plug-in keeps the test
consistent against every alternative (a fixed bet too large for a small loss would lose wealth),
at the price of log(1 / (1 - w)) and log(1 / w) in log wealth respectively.

Hand-written because no maintained package offers a vectorised one (``confseq`` ships the
two-sided CS, not this test, and needs a C++ build).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from analysis.sequential import Floats

__all__ = ["DESIGN_WEIGHT", "betting_log_wealth", "betting_pvalue"]

_CAP = 0.5  # bet at most this share of what the worst payoff could take
_PRIOR_M2 = 0.25  # one pseudo-observation of squared payoff 1/4 regularises the first bets
DESIGN_WEIGHT = 0.75  # the design bet's part of the starting wealth, where a test has one


def betting_log_wealth(
    x: ArrayLike,
    null: float,
    alternative: Literal["less", "greater"],
    mask: ArrayLike | None = None,
    design: float | None = None,
) -> Floats:
    """Log wealth after every prefix (last axis is time).

    ``mask`` (same shape, booleans) marks the observations that belong to the stream; the others
    are skipped (used for one category inside a mixed stream, many Monte-Carlo runs at once).
    ``design``, a bet in (0, 1], mixes in a fixed bet of that size (capped like the plug-in).
    """
    if design is not None and not 0 < design <= 1:
        raise ValueError(f"design must be in (0, 1], got {design}")
    if not 0 < null < 1:
        raise ValueError(f"null must be in (0, 1), got {null}")
    arr = np.asarray(x, dtype=np.float64)
    if not np.all((arr >= 0) & (arr <= 1)):  # NaN fails both comparisons
        raise ValueError("scores must lie in [0, 1]")
    sign = 1.0 if alternative == "greater" else -1.0
    worst = null if alternative == "greater" else 1 - null  # largest loss per unit bet
    on = np.ones(arr.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    y = np.where(on, sign * (arr - null), 0.0)
    # sums of the payoff and its square before each observation (so the bet is predictable);
    # the pseudo-observation has payoff 0 and squared payoff 1/4, and the counts cancel
    m1 = np.cumsum(y, axis=-1) - y
    m2 = np.cumsum(y * y, axis=-1) - y * y + _PRIOR_M2
    lam = np.clip(m1 / m2, 0.0, _CAP / worst)
    plug_in = np.cumsum(np.log1p(lam * y), axis=-1)
    if design is None:
        return plug_in
    fixed = np.cumsum(np.log1p(min(design, _CAP / worst) * y), axis=-1)
    return np.logaddexp(math.log(1 - DESIGN_WEIGHT) + plug_in, math.log(DESIGN_WEIGHT) + fixed)


def betting_pvalue(
    x: ArrayLike,
    null: float,
    alternative: Literal["less", "greater"],
    mask: ArrayLike | None = None,
    design: float | None = None,
) -> Floats:
    """Always-valid p-value path: min(1, 1 / running max of the wealth)."""
    log_w = betting_log_wealth(x, null, alternative, mask, design)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_w, axis=-1)))
