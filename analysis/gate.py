"""The judge gate: always-valid statistics of the primary judge scores under one policy.

Superiority (start A/B, promote on the judge) is the mSPRT's rejection of "win rate <= bar"
after the burn-in, reported as its one-sided lower confidence sequence. Inferiority (roll
back) and equivalence use the two-sided asymptotic confidence sequence after the burn-in and
the exact empirical-Bernstein one before it. bench/analysis validates this rule by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.power import PLANNING_SD, fixed_horizon_n, samples_needed
from analysis.sequential import Floats, asymptotic_cs, eb_cs, msprt_lower_bound, msprt_pvalue
from tunegate.experiments import Policy

__all__ = ["JudgeGate", "judge_gate", "planned_n"]


def planned_n(policy: Policy) -> float:
    """Pre-registered fixed-horizon size at the MDE (planning sd), which tunes the CS."""
    return fixed_horizon_n(PLANNING_SD, policy.mde, policy.alpha, policy.power)


@dataclass(frozen=True)
class JudgeGate:
    n: int
    win_rate: float
    sd: float
    lower: float  # one-sided always-valid lower bound (mSPRT inversion)
    cs_lower: float  # two-sided always-valid bounds in force now
    cs_upper: float
    cs_method: str  # "asymptotic" after the burn-in, "empirical_bernstein" before
    p_value: float  # always-valid p-value for H0: win rate <= bar
    superior: bool
    inferior: bool  # upper bound below 0.5 - loss margin
    equivalent: bool  # interval inside 0.5 +- equivalence margin
    samples_needed: int
    path_lower: Floats  # per-pair paths for the report's plot
    path_upper: Floats
    path_mean: Floats

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("path_")}


def judge_gate(scores: ArrayLike, policy: Policy) -> JudgeGate:
    """Evaluate the gate on scores in time order; an empty stream gives the no-evidence gate."""
    x = np.asarray(scores, dtype=np.float64)
    n = int(x.size)
    burn = policy.min_pairs
    if n == 0:
        empty = np.zeros(0)
        need = max(burn, _projection(0, 0.0, PLANNING_SD, policy))
        return JudgeGate(
            0,
            0.5,
            PLANNING_SD,
            0.0,
            0.0,
            1.0,
            "none",
            1.0,
            False,
            False,
            False,
            need,
            empty,
            empty,
            empty,
        )
    t = np.arange(1, n + 1)
    mean = np.cumsum(x) / t
    sd = float(x.std()) if n > 1 else PLANNING_SD
    eb_lo, eb_hi = eb_cs(x, policy.alpha)
    as_lo, as_hi = asymptotic_cs(x, policy.alpha, planned_n(policy))
    after = t >= burn
    as_lo = np.maximum.accumulate(np.where(after, as_lo, -math.inf))
    as_hi = np.minimum.accumulate(np.where(after, as_hi, math.inf))
    lo = np.where(after, np.maximum(as_lo, 0.0), eb_lo)
    hi = np.where(after, np.minimum(as_hi, 1.0), eb_hi)
    p_value = float(
        msprt_pvalue(x, policy.win_rate_bar, policy.mde, policy.prior_sd_ratio, burn)[-1]
    )
    lower = float(msprt_lower_bound(x, policy.alpha, policy.mde, policy.prior_sd_ratio, burn)[-1])
    superior = n >= burn and p_value <= policy.alpha
    margin = policy.equivalence_margin
    cs_lo, cs_hi = float(lo[-1]), float(hi[-1])
    equivalent = n >= burn and 0.5 - margin <= cs_lo and cs_hi <= 0.5 + margin
    need = 0 if superior else max(burn - n, _projection(n, float(mean[-1]), sd, policy))
    return JudgeGate(
        n=n,
        win_rate=float(mean[-1]),
        sd=sd,
        lower=lower,
        cs_lower=cs_lo,
        cs_upper=cs_hi,
        cs_method="asymptotic" if n >= burn else "empirical_bernstein",
        p_value=p_value,
        superior=superior,
        inferior=cs_hi < 0.5 - policy.loss_margin,
        equivalent=equivalent,
        samples_needed=need,
        path_lower=lo,
        path_upper=hi,
        path_mean=mean,
    )


def _projection(n: int, mean: float, sd: float, policy: Policy) -> int:
    effect = mean - policy.win_rate_bar
    return samples_needed(n, effect, max(sd, 1e-3), policy.alpha, policy.mde, policy.prior_sd_ratio)
