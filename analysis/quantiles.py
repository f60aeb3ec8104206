"""Always-valid bounds on a quantile (latency p95): order statistics at time-uniform ranks.

For the q-quantile Q of any distribution, the number of observations below Q after t draws is
dominated by a Binomial(t, q) walk. A beta-binomial mixture martingale over success rates on
one side of q (Howard & Ramdas 2022, "Sequential estimation of quantiles with applications to
A/B-testing and best-arm identification") crosses 1/alpha with probability at most alpha at any
time, so the ranks where it would cross give order statistics that bound Q at every sample size
at once. The ranks depend only on t, q and alpha, so they are computed once per sample size and
the data enter only through the order statistics.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, betaln

__all__ = ["quantile_bounds", "quantile_ranks", "upper_bound_from"]

_PRIOR_SIZE = 50.0  # beta prior a + b: tightest around a few hundred observations


def _log_mixture(successes: np.ndarray, t: int, q: float, upper: bool) -> np.ndarray:
    """log of the beta mixture of likelihood ratios, prior truncated to one side of q."""
    a, b = q * _PRIOR_SIZE, (1 - q) * _PRIOR_SIZE
    s = successes.astype(np.float64)
    # mass of Beta(a + s, b + t - s) on the tested side of q, relative to the prior's
    post_side = betainc(a + s, b + t - s, q)
    prior_side = betainc(a, b, q)
    if upper:
        post_side, prior_side = 1 - post_side, 1 - prior_side
    with np.errstate(divide="ignore"):
        return np.asarray(
            betaln(a + s, b + t - s)
            - betaln(a, b)
            + np.log(post_side)
            - math.log(prior_side)
            - s * math.log(q)
            - (t - s) * math.log(1 - q),
            dtype=np.float64,
        )


@lru_cache(maxsize=65536)
def quantile_ranks(t: int, q: float, alpha: float) -> tuple[int, int]:
    """(lower rank, upper rank), 1-based; 0 or t + 1 where that side has no bound yet.

    With probability at least 1 - alpha for every t at once (each side), the lower-rank order
    statistic is at most Q and the upper-rank one at least Q.
    """
    if t < 1:
        return 0, 1
    if not 0 < q < 1 or not 0 < alpha < 1:
        raise ValueError("q and alpha must be in (0, 1)")
    threshold = math.log(1 / alpha)
    found = _bisected_ranks(t, q, threshold)
    if found is not None:
        return found
    s = np.arange(t + 1)
    # upper: #below-Q >= k is implausible -> the k-th order statistic is above Q
    over = np.nonzero(_log_mixture(s, t, q, upper=True) >= threshold)[0]
    hi = int(over[0]) if over.size else t + 1
    # lower: #at-or-below-Q <= s is implausible for every s below the last crossing
    under = np.nonzero(_log_mixture(s, t, q, upper=False) >= threshold)[0]
    lo = int(under[-1]) + 1 if under.size else 0
    return lo, min(hi, t + 1)


def upper_bound_from(t: int, q: float, alpha: float) -> int:
    """The smallest sample size from ``t`` on at which the quantile has an upper bound (its
    upper rank is at most the sample size): below it, no data can show a quantile small, so a
    non-inferiority guardrail on it cannot hold yet. Doubling, then bisection (the bound, once
    there, stays: more observations only narrow the ranks)."""

    def bounded(n: int) -> bool:
        return quantile_ranks(n, q, alpha)[1] <= n

    t = max(t, 1)
    if bounded(t):
        return t
    low, high = t, 2 * t
    while not bounded(high):
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if bounded(mid) else (mid, high)
    return high


def _bisected_ranks(t: int, q: float, threshold: float) -> tuple[int, int] | None:
    """:func:`quantile_ranks` by bisection on the ranks instead of a scan of all ``t + 1``.

    Each side's mixture is monotone in the number below (every component's likelihood ratio
    is: rates above q reward more of them, rates below fewer), so the first upper crossing above
    ``q t`` and the last lower crossing below it are found by bisection, in O(log t) evaluations
    (a look at 10^7 latencies costs the same as one at 10^4). None (the caller scans every rank)
    below 2,000 observations, where the scan is as cheap, or when the middle already crosses.
    """
    if t < 2000:
        return None
    mid_lo, mid_hi = math.floor(q * t), math.ceil(q * t)

    def over(k: int) -> bool:
        return bool(_log_mixture(np.array([k]), t, q, upper=True)[0] >= threshold)

    def under(k: int) -> bool:
        return bool(_log_mixture(np.array([k]), t, q, upper=False)[0] >= threshold)

    if over(mid_lo) or under(mid_hi):
        return None
    if over(t):  # first k in (mid_lo, t] that crosses
        left, right = mid_lo, t
        while right - left > 1:
            k = (left + right) // 2
            left, right = (left, k) if over(k) else (k, right)
        hi = right
    else:
        hi = t + 1
    if under(0):  # last k in [0, mid_hi) that crosses
        left, right = 0, mid_hi
        while right - left > 1:
            k = (left + right) // 2
            left, right = (k, right) if under(k) else (left, k)
        lo = left + 1
    else:
        lo = 0
    return lo, min(hi, t + 1)


def quantile_bounds(x: ArrayLike, q: float, alpha: float) -> tuple[float, float, float]:
    """(lower, estimate, upper) for the ``q`` quantile; an unbounded side is -inf / +inf."""
    arr = np.sort(np.asarray(x, dtype=np.float64))
    n = int(arr.size)
    if n == 0:
        return -math.inf, math.nan, math.inf
    lo, hi = quantile_ranks(n, q, alpha)
    lower = float(arr[lo - 1]) if lo >= 1 else -math.inf
    upper = float(arr[hi - 1]) if hi <= n else math.inf
    position = q * (n - 1)  # numpy's default (linear) quantile, on the array already sorted
    below = int(position)
    above = min(below + 1, n - 1)
    estimate = float(arr[below] + (position - below) * (arr[above] - arr[below]))
    return lower, estimate, upper
