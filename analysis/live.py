"""Live A/B outcomes with the user as the unit: a sequential test, and fixed-sample references.

The decision uses :func:`live_sequential`: each arm's per-user means, in the order users first
gave feedback, get an asymptotic confidence sequence at half the alpha (intersected over time
once the arm has the minimum number of users); the difference's interval is the candidate's
lower minus the control's upper bound and so on, valid at every look by the union bound. The
fixed-sample tests below (Welch, CUPED, clustered errors) stay for reports and offline use.

Feedback events carry an arm, a value and a user key hash. Users (not requests) are the unit:
each user's mean value is one observation, so heavy users do not dominate and the test's
independence assumption holds. When a pre-period value exists per user (e.g. feedback from the
shadow stage, when everyone was served the control) CUPED removes its explained variance; the
request-level regression with standard errors clustered by user is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import statsmodels.api as sm
from numpy.typing import ArrayLike
from statsmodels.stats.weightstats import ttest_ind

from analysis.sequential import asymptotic_cs

__all__ = [
    "LiveResult",
    "SequentialLive",
    "clustered_difference",
    "cuped_difference",
    "live_sequential",
    "user_means",
    "user_test",
]


@dataclass(frozen=True)
class LiveResult:
    """Candidate minus control in a live metric, its standard error and one-sided p-value."""

    method: str
    users_control: int
    users_candidate: int
    control_mean: float
    candidate_mean: float
    difference: float
    std_error: float
    p_superior: float  # H0: difference <= 0
    p_noninferior: float  # H0: difference <= -margin

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def user_means(
    arms: Sequence[str], values: ArrayLike, users: Sequence[str]
) -> dict[str, dict[str, float]]:
    """{arm: {user: mean value}}; a user seen on both arms (should not happen) counts on each."""
    vals = np.asarray(values, dtype=np.float64)
    sums: dict[tuple[str, str], list[float]] = {}
    for arm, value, user in zip(arms, vals, users, strict=True):
        sums.setdefault((arm, user), []).append(float(value))
    out: dict[str, dict[str, float]] = {}
    for (arm, user), items in sums.items():
        out.setdefault(arm, {})[user] = float(np.mean(items))
    return out


def user_test(control: ArrayLike, candidate: ArrayLike, margin: float) -> LiveResult:
    """Welch's t-test on per-user means; raises ValueError with fewer than two users an arm."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    if min(ctrl.size, cand.size) < 2:
        raise ValueError("each arm needs at least two users")
    with np.errstate(all="ignore"):
        _, p_sup, _ = ttest_ind(cand, ctrl, alternative="larger", usevar="unequal")
        _, p_ni, _ = ttest_ind(cand, ctrl, alternative="larger", usevar="unequal", value=-margin)
    se = float(np.sqrt(cand.var(ddof=1) / cand.size + ctrl.var(ddof=1) / ctrl.size))
    return LiveResult(
        "welch_per_user",
        ctrl.size,
        cand.size,
        float(ctrl.mean()),
        float(cand.mean()),
        float(cand.mean() - ctrl.mean()),
        se,
        _nan_one(p_sup),
        _nan_one(p_ni),
    )


def _nan_one(p: object) -> float:
    value = float(p)  # type: ignore[arg-type]  # numpy scalar
    return 1.0 if np.isnan(value) else value


def _ols_difference(
    y: np.ndarray,
    design: np.ndarray,
    margin: float,
    method: str,
    groups: np.ndarray | None,
    arm: np.ndarray,
) -> LiveResult:
    model = sm.OLS(y, design)
    fit = (
        model.fit(cov_type="cluster", cov_kwds={"groups": groups})
        if groups is not None
        else (model.fit(cov_type="HC1"))
    )
    diff, se = float(fit.params[1]), float(fit.bse[1])
    from scipy.stats import norm

    z_sup = diff / se if se > 0 else 0.0
    z_ni = (diff + margin) / se if se > 0 else 0.0
    return LiveResult(
        method,
        int((arm == 0).sum()),
        int((arm == 1).sum()),
        float(y[arm == 0].mean()),
        float(y[arm == 1].mean()),
        diff,
        se,
        float(norm.sf(z_sup)),
        float(norm.sf(z_ni)),
    )


def cuped_difference(
    control: ArrayLike,
    candidate: ArrayLike,
    control_pre: ArrayLike,
    candidate_pre: ArrayLike,
    margin: float,
) -> LiveResult:
    """Per-user outcomes regressed on arm and the centred pre-period covariate (HC1 errors)."""
    y = np.concatenate([np.asarray(control, np.float64), np.asarray(candidate, np.float64)])
    x = np.concatenate([np.asarray(control_pre, np.float64), np.asarray(candidate_pre, np.float64)])
    if x.size != y.size or y.size < 4:
        raise ValueError("outcomes and pre-period covariates must align, with at least 4 users")
    arm = np.concatenate([np.zeros(np.size(control)), np.ones(np.size(candidate))])
    design = np.column_stack([np.ones_like(y), arm, x - x.mean()])
    return _ols_difference(y, design, margin, "cuped", None, arm)


def clustered_difference(
    arms: ArrayLike, values: ArrayLike, users: Sequence[str], margin: float
) -> LiveResult:
    """Request-level regression of value on arm, standard errors clustered by user."""
    arm = np.asarray(arms, np.float64)
    y = np.asarray(values, np.float64)
    _, groups = np.unique(np.asarray(users, dtype=object), return_inverse=True)
    if len(set(users)) < 4:
        raise ValueError("clustered errors need at least 4 users")
    design = np.column_stack([np.ones_like(y), arm])
    return _ols_difference(y, design, margin, "clustered_by_user", groups, arm)


@dataclass(frozen=True)
class SequentialLive:
    """Candidate minus control in a live metric with its always-valid interval."""

    users_control: int
    users_candidate: int
    control_mean: float
    candidate_mean: float
    difference: float
    lower: float
    upper: float
    margin: float
    alpha: float
    min_users: int
    superior: bool  # lower > 0
    noninferior: bool  # lower > -margin

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _arm_bounds(
    x: np.ndarray, alpha: float, planned_n: float, min_users: int
) -> tuple[float, float]:
    if x.size < min_users:
        return -np.inf, np.inf
    lo, hi = asymptotic_cs(x, alpha, planned_n)
    look = np.arange(1, x.size + 1) >= min_users
    return float(np.max(np.where(look, lo, -np.inf))), float(np.min(np.where(look, hi, np.inf)))


def live_sequential(
    control: ArrayLike,
    candidate: ArrayLike,
    margin: float,
    alpha: float,
    planned_n: float,
    min_users: int,
) -> SequentialLive:
    """Per-user means of each arm in time order -> always-valid difference test."""
    ctrl, cand = np.asarray(control, np.float64), np.asarray(candidate, np.float64)
    c_lo, c_hi = _arm_bounds(ctrl, alpha / 2, planned_n, min_users)
    k_lo, k_hi = _arm_bounds(cand, alpha / 2, planned_n, min_users)
    lower, upper = k_lo - c_hi, k_hi - c_lo
    c_mean = float(ctrl.mean()) if ctrl.size else float("nan")
    k_mean = float(cand.mean()) if cand.size else float("nan")
    return SequentialLive(
        int(ctrl.size),
        int(cand.size),
        c_mean,
        k_mean,
        k_mean - c_mean,
        float(lower),
        float(upper),
        margin,
        alpha,
        min_users,
        bool(lower > 0),
        bool(lower > -margin),
    )
