"""The judge gate: always-valid statistics of the primary judge scores under one policy.

Three tests, each with its own share of alpha (analysis/budget.py):

- superiority (start the A/B, promote on the judge): the mSPRT's rejection of "win rate <=
  bar", from the burn-in on; its one-sided lower confidence sequence is reported beside it;
- loss (roll back, the early path): a betting e-process against "win rate >= 0.5 - loss
  margin", valid from the first pair, so a clear loss rolls back before the burn-in ends;
- equivalence (stop): the two-sided asymptotic confidence sequence, intersected over time from
  the burn-in on, inside 0.5 +- the equivalence margin.

The reported interval is the (1 - alpha) confidence sequence in force now: the empirical-
Bernstein one before the burn-in, the running intersection of the asymptotic one after it.
Because it is an intersection it can exclude the current estimate; ``current_lower`` and
``current_upper`` are this look's own interval, so a report shows both and says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.betting import betting_pvalue
from analysis.budget import alpha_for
from analysis.power import PLANNING_SD, fixed_horizon_n, samples_needed
from analysis.sequential import (
    Floats,
    asymptotic_cs,
    eb_cs,
    msprt_log_evalue_last,
    msprt_pvalue,
    normal_mixture_log_evalue,
)
from tunegate.experiments import Policy

__all__ = [
    "JudgeGate",
    "empty_gate",
    "judge_gate",
    "lower_bound_at",
    "planned_n",
    "projected_need",
]


def planned_n(policy: Policy) -> float:
    """Pre-registered fixed-horizon size at the MDE (planning sd), which tunes the CS."""
    return fixed_horizon_n(PLANNING_SD, policy.mde, policy.alpha, policy.power)


@dataclass(frozen=True)
class JudgeGate:
    n: int
    win_rate: float
    sd: float
    lower: float  # one-sided always-valid lower bound at the superiority alpha (mSPRT inversion)
    cs_lower: float  # two-sided (1 - alpha) always-valid bounds in force now (intersected)
    cs_upper: float
    current_lower: float  # this look's own (1 - alpha) interval, not intersected over time
    current_upper: float
    cs_method: str  # "asymptotic" after the burn-in, "empirical_bernstein" before
    p_value: float  # always-valid p-value for H0: win rate <= bar
    superior: bool
    loss_p_value: float  # always-valid p-value for H0: win rate >= 0.5 - loss margin
    inferior: bool
    equivalence_interval: tuple[float, float]
    equivalent: bool  # the equivalence CS inside 0.5 +- equivalence margin
    samples_needed: int
    alpha_superiority: float
    alpha_loss: float
    alpha_equivalence: float
    path_lower: Floats  # per-pair paths for the report's plot
    path_upper: Floats
    path_mean: Floats

    @property
    def estimate_outside(self) -> bool:
        """The running intersection excludes the current estimate (the rate has drifted)."""
        return not self.cs_lower <= self.win_rate <= self.cs_upper

    def to_json(self) -> dict[str, object]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("path_")}
        out["equivalence_interval"] = list(self.equivalence_interval)
        out["estimate_outside"] = self.estimate_outside
        return out


def empty_gate(policy: Policy) -> JudgeGate:
    empty = np.zeros(0)
    need = max(policy.min_pairs, projected_need(0, 0.0, PLANNING_SD, policy))
    return JudgeGate(
        0, 0.5, PLANNING_SD, 0.0, 0.0, 1.0, 0.0, 1.0, "none", 1.0, False, 1.0, False,
        (0.0, 1.0), False, need, alpha_for(policy, "judge_superiority"),
        alpha_for(policy, "judge_loss"), alpha_for(policy, "judge_equivalence"),
        empty, empty, empty,
    )  # fmt: skip


def _intersected(x: Floats, alpha: float, policy: Policy) -> tuple[Floats, Floats, Floats, Floats]:
    """(lower, upper) paths in force and this look's own: EB before the burn-in, AS after."""
    burn = policy.min_pairs
    t = np.arange(1, x.size + 1)
    eb_lo, eb_hi = eb_cs(x, alpha)
    as_lo, as_hi = asymptotic_cs(x, alpha, planned_n(policy))
    after = t >= burn
    run_lo = np.maximum.accumulate(np.where(after, as_lo, -math.inf))
    run_hi = np.minimum.accumulate(np.where(after, as_hi, math.inf))
    lo = np.where(after, np.maximum(run_lo, 0.0), eb_lo)
    hi = np.where(after, np.minimum(run_hi, 1.0), eb_hi)
    now_lo = np.where(after, np.maximum(as_lo, 0.0), eb_lo)
    now_hi = np.where(after, np.minimum(as_hi, 1.0), eb_hi)
    return lo, hi, now_lo, now_hi


def _lower_bound(x: Floats, alpha: float, policy: Policy) -> float:
    """The smallest null the mSPRT keeps at the last look: two grid passes on [0, 1]."""
    if x.size < policy.min_pairs:
        return 0.0
    return _smallest_kept(
        lambda grid: msprt_log_evalue_last(x, grid, policy.mde, policy.prior_sd_ratio), alpha
    )


def _smallest_kept(log_evalue: Callable[[Floats], Floats], alpha: float) -> float:
    """The smallest null in [0, 1] the test keeps (log e-value below log 1/alpha), by two grid
    passes of 257 points: the second refines the cell where the first found the edge."""
    threshold = math.log(1 / alpha)
    lo, hi = 0.0, 1.0
    for _ in range(2):
        grid = np.linspace(lo, hi, 257)
        kept = np.nonzero(log_evalue(grid) < threshold)[0]
        if kept.size == 0:
            return float(hi)
        first = int(kept[0])
        lo, hi = float(grid[max(first - 1, 0)]), float(grid[first])
    return lo


def lower_bound_at(n: int, mean: float, var: float, alpha: float, policy: Policy) -> float:
    """:func:`_lower_bound` from the stream's count, mean and regularised variance (the running
    state's), by the same two grid passes."""
    if n < policy.min_pairs:
        return 0.0
    sd = math.sqrt(var)
    m = policy.mde / sd
    return _smallest_kept(
        lambda grid: normal_mixture_log_evalue(
            (mean - grid) * n / sd, float(n), m, (policy.prior_sd_ratio * m) ** 2
        ),
        alpha,
    )


def judge_gate(scores: ArrayLike, policy: Policy) -> JudgeGate:
    """Evaluate the gate on scores in [0, 1] in time order; empty gives the no-evidence gate."""
    x = np.asarray(scores, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return empty_gate(policy)
    burn = policy.min_pairs
    a_sup = alpha_for(policy, "judge_superiority")
    a_loss = alpha_for(policy, "judge_loss")
    a_eq = alpha_for(policy, "judge_equivalence")
    mean = np.cumsum(x) / np.arange(1, n + 1)
    sd = float(x.std()) if n > 1 else PLANNING_SD
    lo, hi, now_lo, now_hi = _intersected(x, policy.alpha, policy)
    p_value = float(
        msprt_pvalue(x, policy.win_rate_bar, policy.mde, policy.prior_sd_ratio, burn)[-1]
    )
    superior = n >= burn and p_value <= a_sup
    loss_p = float(betting_pvalue(x, 0.5 - policy.loss_margin, "less")[-1])
    inferior = n >= policy.min_rollback_pairs and loss_p <= a_loss
    eq_lo, eq_hi, _, _ = _intersected(x, a_eq, policy)
    margin = policy.equivalence_margin
    equivalent = n >= burn and 0.5 - margin <= float(eq_lo[-1]) and float(eq_hi[-1]) <= 0.5 + margin
    need = 0 if superior else max(burn - n, projected_need(n, float(mean[-1]), sd, policy))
    return JudgeGate(
        n=n,
        win_rate=float(mean[-1]),
        sd=sd,
        lower=_lower_bound(x, a_sup, policy),
        cs_lower=float(lo[-1]),
        cs_upper=float(hi[-1]),
        current_lower=float(now_lo[-1]),
        current_upper=float(now_hi[-1]),
        cs_method="asymptotic" if n >= burn else "empirical_bernstein",
        p_value=p_value,
        superior=superior,
        loss_p_value=loss_p,
        inferior=inferior,
        equivalence_interval=(float(eq_lo[-1]), float(eq_hi[-1])),
        equivalent=equivalent,
        samples_needed=need,
        alpha_superiority=a_sup,
        alpha_loss=a_loss,
        alpha_equivalence=a_eq,
        path_lower=lo,
        path_upper=hi,
        path_mean=mean,
    )


def projected_need(n: int, mean: float, sd: float, policy: Policy) -> int:
    effect = mean - policy.win_rate_bar
    alpha = alpha_for(policy, "judge_superiority")
    return samples_needed(n, effect, max(sd, 1e-3), alpha, policy.mde, policy.prior_sd_ratio)
