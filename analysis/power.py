"""Planning: fixed-horizon sample sizes, minimum detectable effects, and ``samples_needed``.

The fixed-horizon figures are the one-sample, one-sided normal-power formula (a promotion is a
one-sided claim), n = ((z_{1-alpha} + z_power) sd / mde)^2, written out because statsmodels'
``NormalIndPower.solve_power`` finds the same number by root-finding in about 12 ms, twice a
look; tests/analysis checks the two agree. :func:`samples_needed` projects when the mSPRT of
analysis/sequential.py would cross its threshold if the effect stayed where it is now (or at
the MDE, when the estimate is smaller), which is what a "continue" decision reports.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy.special import ndtri

from analysis.sequential import normal_mixture_log_evalue

__all__ = ["PLANNING_SD", "fixed_horizon_n", "minimum_detectable_effect", "samples_needed"]

#: Standard deviation assumed before enough scores exist to estimate it (the maximum for [0, 1]).
PLANNING_SD = 0.5


def _check(alpha: float, power: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")


def fixed_horizon_n(sd: float, mde: float, alpha: float, power: float = 0.8) -> float:
    """Sample size of a one-sided fixed-horizon z-test that detects ``mde`` with ``power``."""
    _check(alpha, power)
    if sd <= 0 or mde <= 0:
        raise ValueError("sd and mde must be positive")
    return _fixed_n(sd, mde, alpha, power)


@lru_cache(maxsize=256)
def _fixed_n(sd: float, mde: float, alpha: float, power: float) -> float:
    return float(((ndtri(1 - alpha) + ndtri(power)) * sd / mde) ** 2)


def minimum_detectable_effect(sd: float, n: float, alpha: float, power: float = 0.8) -> float:
    """Smallest mean difference a one-sided fixed-horizon z-test on ``n`` samples detects."""
    _check(alpha, power)
    if sd <= 0 or n <= 0:
        raise ValueError("sd and n must be positive")
    return float((ndtri(1 - alpha) + ndtri(power)) * sd / math.sqrt(n))


def _log_evalue(n: float, effect: float, sd: float, mde: float, ratio: float) -> float:
    m = mde / sd
    return float(normal_mixture_log_evalue(effect * n / sd, n, m, (ratio * m) ** 2))


def samples_needed(
    n: int,
    effect: float,
    sd: float,
    alpha: float,
    mde: float,
    prior_sd_ratio: float = 0.25,
    cap: int = 10_000_000,
) -> int:
    """More samples until the mSPRT is expected to reject, assuming effect max(effect, mde).

    Returns 0 when the projection is already past the threshold and ``cap`` when it never gets
    there within it.
    """
    if n < 0 or sd <= 0 or mde <= 0:
        raise ValueError("n must be >= 0 and sd, mde positive")
    effect = max(effect, mde)
    threshold = math.log(1 / alpha)
    if n > 0 and _log_evalue(n, effect, sd, mde, prior_sd_ratio) >= threshold:
        return 0
    lo, hi = max(n, 1), max(2 * n, 16)
    while _log_evalue(hi, effect, sd, mde, prior_sd_ratio) < threshold:
        lo, hi = hi, hi * 2
        if hi > cap:
            return cap
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _log_evalue(mid, effect, sd, mde, prior_sd_ratio) >= threshold:
            hi = mid
        else:
            lo = mid
    return hi - n
