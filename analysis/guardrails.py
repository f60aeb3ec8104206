"""Guardrails as non-inferiority tests with pre-registered margins.

Each guardrail asks two one-sided questions of the candidate against the control:
*breached* — is it significantly worse than the margin allows (roll back)?
*holds* — is it significantly within the margin (non-inferiority shown, needed to promote)?
Error rates use statsmodels' two-sample score test on the difference, token counts Welch's
t-test, the latency p95 distribution-free order-statistic bounds, and per-category judge loss a
z-test on the per-pair net score with Holm across categories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binom
from statsmodels.stats.proportion import test_proportions_2indep
from statsmodels.stats.weightstats import DescrStatsW, ttest_ind

from analysis.multiple import adjust

__all__ = [
    "CategoryRegression",
    "GuardrailResult",
    "category_regressions",
    "error_rate_guardrail",
    "latency_p95_guardrail",
    "quantile_bounds",
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
    p_breach: float
    p_noninferior: float
    n_control: int
    n_candidate: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _p(value: object) -> float:
    p = float(value)  # type: ignore[arg-type]  # statsmodels returns numpy scalars
    return 1.0 if math.isnan(p) else p


def error_rate_guardrail(
    control_errors: int,
    control_n: int,
    candidate_errors: int,
    candidate_n: int,
    margin: float,
    alpha: float,
) -> GuardrailResult:
    """Candidate error rate minus control's against an absolute ``margin``."""
    if min(control_n, candidate_n) <= 0:
        return GuardrailResult("error_rate", 0.0, 0.0, margin, False, False, 1.0, 1.0, 0, 0)
    with np.errstate(all="ignore"):  # zero counts divide by zero inside the ratio statistics
        breach = test_proportions_2indep(
            candidate_errors,
            candidate_n,
            control_errors,
            control_n,
            value=margin,
            compare="diff",
            alternative="larger",
        ).pvalue
        within = test_proportions_2indep(
            candidate_errors,
            candidate_n,
            control_errors,
            control_n,
            value=margin,
            compare="diff",
            alternative="smaller",
        ).pvalue
    return GuardrailResult(
        "error_rate",
        control_errors / control_n,
        candidate_errors / candidate_n,
        margin,
        _p(breach) <= alpha,
        _p(within) <= alpha,
        _p(breach),
        _p(within),
        control_n,
        candidate_n,
    )


def quantile_bounds(x: ArrayLike, q: float, alpha: float) -> tuple[float, float, float]:
    """(lower, estimate, upper) for the ``q`` quantile: exact binomial order-statistic bounds.

    Each bound holds with probability 1 - alpha on its own; an unbounded side is +-inf.
    """
    arr = np.sort(np.asarray(x, dtype=np.float64))
    n = arr.size
    if n == 0:
        return -math.inf, math.nan, math.inf
    estimate = float(np.quantile(arr, q))
    lo_rank = int(binom.ppf(alpha, n, q))  # P(Bin < lo_rank) <= alpha: the lo_rank-th order stat
    hi_rank = int(binom.ppf(1 - alpha, n, q)) + 1
    lower = float(arr[lo_rank - 1]) if lo_rank >= 1 else -math.inf
    upper = float(arr[hi_rank - 1]) if hi_rank <= n else math.inf
    return lower, estimate, upper


def latency_p95_guardrail(
    control: ArrayLike, candidate: ArrayLike, margin: float, alpha: float
) -> GuardrailResult:
    """Candidate p95 against (1 + ``margin``) x control p95, with Bonferroni over the two bounds."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    c_lo, c_est, c_hi = quantile_bounds(ctrl, 0.95, alpha / 2)
    k_lo, k_est, k_hi = quantile_bounds(cand, 0.95, alpha / 2)
    limit = 1 + margin
    breached = ctrl.size > 0 and k_lo > limit * c_hi
    holds = ctrl.size > 0 and k_hi <= limit * c_lo
    return GuardrailResult(
        "latency_p95",
        c_est,
        k_est,
        margin,
        bool(breached),
        bool(holds),
        alpha if breached else 1.0,
        alpha if holds else 1.0,
        int(ctrl.size),
        int(cand.size),
    )


def tokens_guardrail(
    control: ArrayLike, candidate: ArrayLike, margin: float, alpha: float
) -> GuardrailResult:
    """Mean tokens per answer against (1 + ``margin``) x control's (Welch's t-test)."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    if min(ctrl.size, cand.size) < 2:
        return GuardrailResult(
            "tokens", math.nan, math.nan, margin, False, False, 1.0, 1.0, ctrl.size, cand.size
        )
    shift = margin * float(ctrl.mean())
    with np.errstate(all="ignore"):  # identical samples have zero variance
        _, breach, _ = ttest_ind(cand, ctrl, alternative="larger", usevar="unequal", value=shift)
        _, within, _ = ttest_ind(cand, ctrl, alternative="smaller", usevar="unequal", value=shift)
    return GuardrailResult(
        "tokens",
        float(ctrl.mean()),
        float(cand.mean()),
        margin,
        _p(breach) <= alpha,
        _p(within) <= alpha,
        _p(breach),
        _p(within),
        ctrl.size,
        cand.size,
    )


@dataclass(frozen=True)
class CategoryRegression:
    """One category's net score (wins - losses) / n against the regression tolerance."""

    category: str
    n: int
    net: float
    tolerance: float
    beyond_tolerance: bool  # the estimate drops more than the tolerance: blocks a stage change
    p_regression: float  # Holm-adjusted, H0: net >= -tolerance
    significant: bool  # breach shown at alpha after Holm: a guardrail breach

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def category_regressions(
    scores: ArrayLike, categories: Sequence[str], tolerance: float, alpha: float
) -> list[CategoryRegression]:
    """Net score per category with a Holm-adjusted test of a drop beyond ``tolerance``."""
    arr = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(categories, dtype=object)
    if arr.size != labels.size:
        raise ValueError("scores and categories must have the same length")
    names = sorted(set(categories))
    nets, raw = [], []
    for name in names:
        d = 2 * arr[labels == name] - 1  # win 1, tie 0, loss -1
        nets.append(float(d.mean()))
        if d.size < 2:
            raw.append(1.0)
            continue
        with np.errstate(all="ignore"):
            # a t-test, not a z-test: categories are often small, and a z-test's p-value on a
            # few dozen pairs is far too confident
            _, p, _ = DescrStatsW(d).ttest_mean(value=-tolerance, alternative="smaller")
        raw.append(_p(p))
    adjusted = adjust(raw, alpha, method="holm")
    return [
        CategoryRegression(
            name,
            int(np.count_nonzero(labels == name)),
            net,
            tolerance,
            net < -tolerance,
            p,
            p <= alpha,
        )
        for name, net, p in zip(names, nets, adjusted, strict=True)
    ]
