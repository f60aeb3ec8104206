"""Guardrails as sequential non-inferiority tests with pre-registered margins.

Each guardrail asks two one-sided questions of the candidate against the control, both with the
guardrail's share of alpha (only one of the two nulls can hold, except exactly at the margin):
*breached* — is it worse than the margin allows (roll back)?
*holds* — is it within the margin (non-inferiority shown, needed to promote)?
All are always-valid, so they may be looked at after every pair:

- error rate: on pairs where both arms answered, the paired difference in errors (-1, 0, 1)
  against the absolute margin, two betting e-processes (analysis/betting.py);
- latency p95: time-uniform order-statistic bounds of each arm's p95 (analysis/quantiles.py),
  half the alpha each, the candidate's against (1 + margin) x the control's;
- tokens: the paired difference candidate - (1 + margin) x control, an asymptotic confidence
  sequence intersected over time (valid after the burn-in, so it acts only after it);
- per-category judge loss: a betting e-process per category on the score against
  "net >= -tolerance" with a design bet (:data:`CATEGORY_BET`), Holm across categories on the
  always-valid p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.betting import betting_pvalue
from analysis.multiple import adjust
from analysis.quantiles import quantile_bounds
from analysis.sequential import asymptotic_cs

__all__ = [
    "BLOCK_EVIDENCE",
    "CATEGORY_BET",
    "CategoryRegression",
    "GuardrailResult",
    "category_regressions",
    "error_rate_guardrail",
    "latency_p95_guardrail",
    "tokens_guardrail",
]


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    control: float
    candidate: float
    margin: float
    breached: bool
    holds: bool
    p_breach: float | None  # always-valid p-values where the test has them
    p_noninferior: float | None
    n_control: int
    n_candidate: int
    alpha: float = 0.0
    method: str = ""
    min_sample: int = 0
    interval: tuple[float, float] | None = None  # always-valid interval of the compared quantity

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval is not None else None
        return out


def error_rate_guardrail(
    control_errors: ArrayLike,
    candidate_errors: ArrayLike,
    margin: float,
    alpha: float,
    min_sample: int = 1,
) -> GuardrailResult:
    """Paired 0/1 errors (same pairs, time order): candidate rate minus control's vs ``margin``."""
    ctrl = np.asarray(control_errors, np.float64)
    cand = np.asarray(candidate_errors, np.float64)
    if ctrl.shape != cand.shape:
        raise ValueError("control_errors and candidate_errors must be paired")
    n = int(ctrl.size)
    if n == 0:
        return GuardrailResult(
            "error_rate", 0.0, 0.0, margin, False, False, 1.0, 1.0, 0, 0, alpha, "betting",
            min_sample,
        )  # fmt: skip
    y = (cand - ctrl + 1) / 2  # in [0, 1]; its mean is (difference + 1) / 2
    null = (1 + margin) / 2
    if null < 1:
        p_breach = float(betting_pvalue(y, null, "greater")[-1])
        p_within = float(betting_pvalue(y, null, "less")[-1])
    else:  # a margin of 100 % or more cannot be breached and always holds
        p_breach, p_within = 1.0, 0.0
    enough = n >= min_sample
    return GuardrailResult(
        "error_rate",
        float(ctrl.mean()),
        float(cand.mean()),
        margin,
        enough and p_breach <= alpha,
        enough and p_within <= alpha,
        p_breach,
        p_within,
        n,
        n,
        alpha,
        "betting",
        min_sample,
    )


def latency_p95_guardrail(
    control: ArrayLike,
    candidate: ArrayLike,
    margin: float,
    alpha: float,
    min_sample: int = 1,
    slack_s: float = 0.0,
) -> GuardrailResult:
    """Candidate p95 against (1 + ``margin``) x control p95 + ``slack_s``, half the alpha on each
    arm's bounds. The absolute slack is what a relative margin cannot express: two p95s of a
    millisecond or less (cached or trivial answers) differ by timer and scheduling noise many
    times over, so without it the guardrail can never hold there."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    c_lo, c_est, c_hi = quantile_bounds(ctrl, 0.95, alpha / 2)
    k_lo, k_est, k_hi = quantile_bounds(cand, 0.95, alpha / 2)
    limit = 1 + margin
    enough = min(ctrl.size, cand.size) >= min_sample
    breached = enough and k_lo > limit * c_hi + slack_s
    holds = enough and k_hi <= limit * c_lo + slack_s
    # the interval of candidate p95 / control p95 that both arms' bounds allow
    ratio = (k_lo / c_hi if c_hi > 0 else math.nan, k_hi / c_lo if c_lo > 0 else math.inf)
    return GuardrailResult(
        "latency_p95",
        c_est,
        k_est,
        margin,
        bool(breached),
        bool(holds),
        None,
        None,
        int(ctrl.size),
        int(cand.size),
        alpha,
        "quantile_cs",
        min_sample,
        (float(ratio[0]), float(ratio[1])),
    )


def tokens_guardrail(
    control: ArrayLike,
    candidate: ArrayLike,
    margin: float,
    alpha: float,
    planned_n: float,
    min_sample: int = 2,
) -> GuardrailResult:
    """Paired tokens per answer: the mean of candidate - (1 + ``margin``) x control against 0."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    if ctrl.shape != cand.shape:
        raise ValueError("control and candidate tokens must be paired")
    n = int(ctrl.size)
    if n < 2:
        return GuardrailResult(
            "tokens", math.nan, math.nan, margin, False, False, None, None, n, n, alpha,
            "confidence_sequence", min_sample,
        )  # fmt: skip
    d = cand - (1 + margin) * ctrl
    lo, hi = asymptotic_cs(d, alpha, planned_n)
    look = np.arange(1, n + 1) >= min_sample
    lower = float(np.max(np.where(look, lo, -math.inf)))
    upper = float(np.min(np.where(look, hi, math.inf)))
    enough = n >= min_sample
    return GuardrailResult(
        "tokens",
        float(ctrl.mean()),
        float(cand.mean()),
        margin,
        enough and lower > 0,
        enough and upper < 0,
        None,
        None,
        n,
        n,
        alpha,
        "confidence_sequence",
        min_sample,
        (lower, upper),
    )


@dataclass(frozen=True)
class CategoryRegression:
    """One category's net score (wins - losses) / n against the regression tolerance."""

    category: str
    n: int
    net: float
    tolerance: float
    beyond_tolerance: bool  # the estimate drops more than the tolerance: blocks a stage change
    p_raw: float  # always-valid, H0: net >= -tolerance
    p_regression: float  # Holm-adjusted across categories
    significant: bool  # breach shown at alpha after Holm, with the minimum sample: roll back
    alpha: float = 0.0
    min_sample: int = 0

    std_error: float = 0.0  # of the net estimate (sd regularised to at least 0.5)

    @property
    def mounting(self) -> bool:
        """Evidence of a regression is building up (e-value >= 1 / BLOCK_EVIDENCE)."""
        return self.p_raw <= BLOCK_EVIDENCE

    @property
    def blocks(self) -> bool:
        """Blocks a stage change: a regression is plausible (no alpha is spent on this)."""
        return (
            self.significant
            or self.beyond_tolerance
            or self.mounting
            or self.net - self.std_error < -self.tolerance
        )

    def pairs_to_clear(self) -> int | None:
        """How many more of this category's pairs would clear the one-standard-error block if the
        estimate held: the block holds while n < (sd / (net + tolerance))^2. None when sampling
        cannot clear it at this estimate (at or beyond the tolerance, or the regression evidence
        itself blocks: significant or mounting)."""
        margin = self.net + self.tolerance
        if self.significant or self.mounting or margin <= 0 or self.n == 0:
            return None
        sd = self.std_error * math.sqrt(self.n)
        return max(0, math.ceil((sd / margin) ** 2) - self.n)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "mounting": self.mounting, "blocks": self.blocks}


#: A category blocks stage changes (it does not roll back) while its estimate is within one
#: standard error of the tolerance, or while its always-valid regression p-value has ever
#: reached this level: the estimate alone flickers around the tolerance from look to look, and a
#: start of the A/B must not slip through on one lucky look. Blocking spends no alpha; it only
#: delays a winner whose category looks bad or is still too small to tell.
BLOCK_EVIDENCE = 0.2

#: The category test's design bet (analysis/betting.py): a category holds a small part of the
#: traffic, so it has few pairs when it must roll back, and the plug-in bet alone spends them
#: learning how much to bet. 0.6 is close to the growth-optimal bet (0.63) against a category
#: that loses 55 % and wins 25 % of its pairs (net -0.30, six times the default tolerance) and
#: stays good for harder and milder clear regressions; the plug-in part catches the small ones.
#: docs/statistics.md has the power this buys.
CATEGORY_BET = 0.6


def category_regressions(
    scores: ArrayLike,
    categories: Sequence[str],
    tolerance: float,
    alpha: float,
    min_sample: int = 1,
) -> list[CategoryRegression]:
    """Net score per category, with an always-valid Holm-adjusted test of a drop beyond it."""
    arr = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(categories, dtype=object)
    if arr.size != labels.size:
        raise ValueError("scores and categories must have the same length")
    names = sorted(set(categories))
    nets, raw, sizes, errors = [], [], [], []
    null = 0.5 - tolerance / 2  # mean score at net = -tolerance
    for name in names:
        x = arr[labels == name]
        nets.append(float(2 * x.mean() - 1))
        sizes.append(int(x.size))
        errors.append(max(float(2 * x.std()), 0.5) / math.sqrt(x.size))
        raw.append(float(betting_pvalue(x, null, "less", design=CATEGORY_BET)[-1]))
    adjusted = adjust(raw, alpha, method="holm") if names else []
    return [
        CategoryRegression(
            name,
            n,
            net,
            tolerance,
            net < -tolerance,
            p,
            q,
            n >= min_sample and q <= alpha,
            alpha,
            min_sample,
            se,
        )
        for name, n, net, p, q, se in zip(names, sizes, nets, raw, adjusted, errors, strict=True)
    ]
