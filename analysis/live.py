"""Live A/B outcomes with the user as the unit: an always-valid test of the difference of means.

The decision uses :func:`live_sequential`: each arm's per-user means, in the order users first
gave feedback, get an asymptotic confidence sequence at half the alpha (intersected over time
once the arm has the minimum number of users); the difference's interval is the candidate's
lower minus the control's upper bound and so on, valid at every look by the union bound.

Feedback events carry an arm, a value and a user key hash. Users (not requests) are the unit:
each user's mean value is one observation, so heavy users do not dominate and the test's
independence assumption holds. (The fixed-sample Welch, CUPED and user-clustered estimators that
stood here were used by no decision or report, and a fixed-sample test re-run at every look is
what the always-valid gates replace, so they were removed; CUPED can return as a variance-reduced
confidence sequence once pre-period feedback is recorded.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.sequential import asymptotic_cs

__all__ = [
    "SequentialLive",
    "live_sequential",
    "user_means",
]


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
