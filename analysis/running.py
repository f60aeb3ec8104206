"""Running statistics: each always-valid test's state, updated a page of observations at a time.

The array tests (analysis/gate.py, guardrails.py, betting.py, sequential.py, srm.py) take the
whole stream and compute a path per prefix, then read its last value or its running extreme.
Every one of those paths is a function of prefix sums and of the previous step, so what a look
needs is a handful of numbers per test: this module keeps them and moves them forward over a
page of new observations with the same vectorised formulas as the array version, offset by the
state (so one page of everything *is* the array version, and many pages equal it to rounding).

- sums: count, sum, sum of squares (the asymptotic CS and the mSPRT's plug-in variance read
  exactly these, not a two-pass variance); a Chan merge of squared deviations for ``x.std()``;
- betting: the payoff sums before the next observation (so the bet stays predictable: it is a
  function of the past only), the log wealth of the plug-in and of the fixed design bet, and the
  running maximum of the (mixed) log wealth, whose inverse is the always-valid p-value;
- empirical Bernstein: the sums the predictable bets are built from and the running extremes of
  the clipped bounds;
- running intersections: the running max of lower and min of upper bounds from the look start;
- mSPRT: the running maximum of the log e-value from the burn-in;
- SRM: the in-stage counts and the running maximum of the log Bayes factor;
- latency: a fixed log-spaced histogram (:class:`LatencyHistogram`) instead of order statistics.

analysis/evidence_state.py holds the experiment's state built of these; nothing here touches Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.special import gammaln

from analysis.sequential import Floats, normal_mixture_log_evalue, rho_squared
from analysis.srm import SRM_CONCENTRATION

__all__ = [
    "AsymptoticRun",
    "BettingRun",
    "EmpiricalBernsteinRun",
    "LatencyHistogram",
    "MsprtRun",
    "SrmRun",
    "Sums",
    "asymptotic_bounds",
]

_PRIOR_VAR = 0.25  # as analysis/sequential.py
_CAP = 0.5  # as analysis/betting.py
_PRIOR_M2 = 0.25
DESIGN_WEIGHT = 0.75


@dataclass
class Sums:
    """Count, sum, sum of squares and squared deviations (Chan merge) of one stream."""

    n: int = 0
    s1: float = 0.0
    s2: float = 0.0
    m2: float = 0.0

    def paths(self, x: Floats) -> tuple[Floats, Floats, Floats]:
        """(t, mean, regularised variance) after every observation of the page."""
        t = self.n + np.arange(1, x.size + 1, dtype=np.float64)
        mean = (self.s1 + np.cumsum(x)) / t
        raw = np.maximum((self.s2 + np.cumsum(x * x)) / t - mean * mean, 0.0)
        return t, mean, (_PRIOR_VAR + t * raw) / (t + 1)

    def add(self, x: Floats) -> None:
        if x.size == 0:
            return
        mean_b = float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n_a, n_b = self.n, int(x.size)
        delta = mean_b - (self.s1 / n_a if n_a else 0.0)
        self.m2 += m2_b + (delta * delta * n_a * n_b / (n_a + n_b) if n_a else 0.0)
        self.n += n_b
        self.s1 += float(x.sum())
        self.s2 += float((x * x).sum())

    @property
    def mean(self) -> float:
        return self.s1 / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation, as numpy's ``x.std()``."""
        return math.sqrt(max(self.m2, 0.0) / self.n) if self.n else math.nan

    def last(self) -> tuple[float, float, float]:
        """(t, mean, regularised variance) now, as :meth:`paths` gave for the last one."""
        t = float(self.n)
        mean = self.s1 / t
        raw = max(self.s2 / t - mean * mean, 0.0)
        return t, mean, (_PRIOR_VAR + t * raw) / (t + 1)


def asymptotic_bounds(
    t: Floats | float, mean: Floats | float, var: Floats | float, alpha: float, planned: float
) -> tuple[Floats, Floats]:
    """analysis/sequential.py's asymptotic CS at given (t, mean, variance)."""
    rho2 = rho_squared(alpha, planned)
    t_, mean_, var_ = (np.asarray(v, dtype=np.float64) for v in (t, mean, var))
    radius = np.sqrt(
        var_ * 2 * (t_ * rho2 + 1) / (t_ * t_ * rho2) * np.log(np.sqrt(t_ * rho2 + 1) / alpha)
    )
    return mean_ - radius, mean_ + radius


@dataclass
class AsymptoticRun:
    """Running intersection of an asymptotic CS over the looks from ``start`` on."""

    alpha: float
    planned: float
    start: int
    lower: float = -math.inf
    upper: float = math.inf

    def add(self, t: Floats, mean: Floats, var: Floats) -> None:
        on = t >= self.start
        if not on.any():
            return
        lo, hi = asymptotic_bounds(t[on], mean[on], var[on], self.alpha, self.planned)
        self.lower = max(self.lower, float(lo.max()))
        self.upper = min(self.upper, float(hi.min()))


@dataclass
class EmpiricalBernsteinRun:
    """analysis/sequential.py's ``eb_cs`` moved forward a page at a time."""

    alpha: float
    cap: float = 0.5
    sq: float = 0.0  # sum of (x - mu_hat)^2
    lam: float = 0.0
    lam_x: float = 0.0
    v_psi: float = 0.0
    lower: float = -math.inf
    upper: float = math.inf

    def add(self, before: Sums, x: Floats) -> None:
        """``before`` is the stream's sums before this page."""
        if x.size == 0:
            return
        t = before.n + np.arange(1, x.size + 1, dtype=np.float64)
        mu_hat = (0.5 + before.s1 + np.cumsum(x)) / (t + 1)
        mu_prev = np.concatenate([[(0.5 + before.s1) / (before.n + 1)], mu_hat[:-1]])
        sq = self.sq + np.cumsum((x - mu_hat) ** 2)
        sigma2 = (0.25 + sq) / (t + 1)
        sigma2_prev = np.concatenate([[(0.25 + self.sq) / (before.n + 1)], sigma2[:-1]])
        log_term = math.log(2 / self.alpha)
        lam = np.minimum(np.sqrt(2 * log_term / (sigma2_prev * t * np.log1p(t))), self.cap)
        psi = (-np.log1p(-lam) - lam) / 4
        v = 4 * (x - mu_prev) ** 2
        lam_sum = self.lam + np.cumsum(lam)
        centre = (self.lam_x + np.cumsum(lam * x)) / lam_sum
        radius = (log_term + self.v_psi + np.cumsum(v * psi)) / lam_sum
        self.lower = max(self.lower, float(np.clip(centre - radius, 0, 1).max()))
        self.upper = min(self.upper, float(np.clip(centre + radius, 0, 1).min()))
        self.sq, self.lam = float(sq[-1]), float(lam_sum[-1])
        self.lam_x = self.lam_x + float(np.sum(lam * x))
        self.v_psi = self.v_psi + float(np.sum(v * psi))


@dataclass
class BettingRun:
    """analysis/betting.py's e-process: payoff sums, log wealth, running max of log wealth."""

    null: float
    alternative: Literal["less", "greater"]
    design: float | None = None
    y1: float = 0.0
    y2: float = 0.0
    plug_in: float = 0.0
    fixed: float = 0.0
    best: float = -math.inf

    def add(self, x: Floats) -> None:
        if x.size == 0:
            return
        sign = 1.0 if self.alternative == "greater" else -1.0
        worst = self.null if self.alternative == "greater" else 1 - self.null
        y = sign * (x - self.null)
        m1 = self.y1 + np.cumsum(y) - y  # the payoffs before each observation: predictable
        m2 = self.y2 + np.cumsum(y * y) - y * y + _PRIOR_M2
        lam = np.clip(m1 / m2, 0.0, _CAP / worst)
        plug_in = self.plug_in + np.cumsum(np.log1p(lam * y))
        if self.design is None:
            wealth = plug_in
        else:
            fixed = self.fixed + np.cumsum(np.log1p(min(self.design, _CAP / worst) * y))
            wealth = np.logaddexp(
                math.log(1 - DESIGN_WEIGHT) + plug_in, math.log(DESIGN_WEIGHT) + fixed
            )
            self.fixed = float(fixed[-1])
        self.best = max(self.best, float(wealth.max()))
        self.plug_in = float(plug_in[-1])
        self.y1 += float(y.sum())
        self.y2 += float((y * y).sum())

    @property
    def p_value(self) -> float:
        return min(1.0, math.exp(-self.best)) if self.best > -math.inf else 1.0


@dataclass
class MsprtRun:
    """Running maximum of the mSPRT's log e-value (analysis/sequential.py) from ``start``."""

    null: float
    mde: float
    prior_sd_ratio: float
    start: int
    best: float = -math.inf

    def add(self, t: Floats, mean: Floats, var: Floats) -> None:
        on = t >= self.start
        if on.any():
            self.best = max(self.best, float(self.log_e(t[on], mean[on], var[on]).max()))

    def log_e(self, t: Floats, mean: Floats, var: Floats | float, null: object = None) -> Floats:
        sd = np.sqrt(var)
        m = self.mde / sd
        at = self.null if null is None else np.asarray(null, dtype=np.float64)
        s = (mean - at) * t / sd
        return normal_mixture_log_evalue(s, t, m, (self.prior_sd_ratio * m) ** 2)

    @property
    def p_value(self) -> float:
        return min(1.0, math.exp(-self.best)) if self.best > -math.inf else 1.0


@dataclass
class SrmRun:
    """In-stage served counts and the running max of the SRM's log Bayes factor (srm.py)."""

    since: float
    weight: float
    n: int = 0
    candidate: int = 0
    best: float = 0.0

    def add(self, served: Floats) -> None:
        if served.size == 0:
            return
        cand = self.candidate + np.cumsum(served)
        if 0 < self.weight < 1:
            w, k = self.weight, SRM_CONCENTRATION
            n = self.n + np.arange(1, served.size + 1, dtype=np.float64)
            ctrl = n - cand
            log_bf = (
                gammaln(k) - gammaln(k + n) + gammaln(k * w + cand) - gammaln(k * w)
                + gammaln(k * (1 - w) + ctrl) - gammaln(k * (1 - w))
                - cand * math.log(w) - ctrl * math.log(1 - w)
            )  # fmt: skip
            self.best = max(self.best, float(log_bf.max()))
        self.n += int(served.size)
        self.candidate = int(cand[-1])


#: Latency bins: 0, then log-spaced edges from 0.1 ms to 10^4 s at 64 per decade (a bin is
#: 3.7 % wide), then infinity. Counts per bin are exact and mergeable (replicas, pages).
LATENCY_EDGES = np.concatenate([[0.0], np.logspace(-4, 4, 8 * 64 + 1), [math.inf]])


@dataclass
class LatencyHistogram:
    """Exact counts of latencies in fixed log-spaced bins; bounds on a quantile from them.

    The always-valid quantile bound (analysis/quantiles.py) says: with probability 1 - alpha at
    every sample size, the ``lo``-th order statistic is at most the quantile and the ``hi``-th at
    least it. The histogram does not know the order statistics, but it knows exactly which bin
    each one falls in (the counts are exact), so the lower edge of the ``lo``-th's bin is at most
    that order statistic, hence at most the quantile, and the upper edge of the ``hi``-th's bin
    at least it. The bounds are therefore valid on the same event, only wider by at most one bin
    (3.7 %) each: conservative, never anti-conservative. The point estimate is interpolated
    inside its bin and only reported.
    """

    counts: list[int] = field(default_factory=lambda: [0] * (LATENCY_EDGES.size - 1))

    def add(self, values: Floats) -> None:
        if values.size:
            found = np.bincount(
                np.searchsorted(LATENCY_EDGES, values, side="right") - 1,
                minlength=LATENCY_EDGES.size - 1,
            )
            self.counts = (np.asarray(self.counts, dtype=np.int64) + found).tolist()

    @property
    def n(self) -> int:
        return int(sum(self.counts))

    def order_bin(self, rank: int) -> int:
        """The bin that holds the ``rank``-th (1-based) smallest value."""
        return int(np.searchsorted(np.cumsum(self.counts), rank, side="left"))

    def bounds(self, q: float, lo: int, hi: int) -> tuple[float, float, float]:
        """(lower, estimate, upper) from the ranks of analysis/quantiles.py's ``quantile_ranks``."""
        n = self.n
        if n == 0:
            return -math.inf, math.nan, math.inf
        lower = float(LATENCY_EDGES[self.order_bin(lo)]) if lo >= 1 else -math.inf
        upper = float(LATENCY_EDGES[self.order_bin(hi) + 1]) if hi <= n else math.inf
        rank = q * (n - 1) + 1
        b = self.order_bin(math.ceil(rank))
        left, right = float(LATENCY_EDGES[b]), float(LATENCY_EDGES[b + 1])
        if not math.isfinite(right):
            return lower, left, upper
        before = int(np.sum(self.counts[:b]))
        share = (rank - before - 0.5) / max(self.counts[b], 1)
        return lower, left + min(max(share, 0.0), 1.0) * (right - left), upper
