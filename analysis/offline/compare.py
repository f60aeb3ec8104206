"""Per-item scores of both arms -> paired Comparisons, one per (set, metric, category).

The test follows the metric's kind (analysis/offline/metrics.py): exact McNemar for binary
outcomes, paired bootstrap for continuous values and corpus metrics, a permutation test for the
pairwise judge. Task sets are superiority comparisons; probe sets non-inferiority on the relative
scale with the acceptable drop as margin (analysis/offline/paired.py has the statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from analysis.offline.metrics import MetricKind
from analysis.offline.paired import (
    OVERALL,
    Comparison,
    Resampler,
    bootstrap,
    mcnemar,
    preference,
)

__all__ = ["MetricScores", "Role", "Scored", "compare_metric"]

Role = Literal["task", "probe"]


@dataclass(slots=True)
class MetricScores:
    """One metric's values on one set: per item for each arm (judge: the candidate score).

    Corpus metrics carry per-item sufficient statistics (n, d) per arm and ``reduce`` (column
    sums -> score).
    """

    metric: str
    kind: MetricKind
    items: list[str]
    categories: list[str]
    control: NDArray[np.float64]
    candidate: NDArray[np.float64]
    reduce: Callable[[NDArray[np.float64]], float] | None = None


@dataclass(slots=True)
class Scored:
    """A comparison with where it came from and whether it must pass for the run to pass."""

    set: str
    role: Role
    comparison: Comparison
    primary: bool  # task, all items: must pass; otherwise a shown regression still fails
    extra: dict[str, object] = field(default_factory=dict)


def _statistic(
    reduce: Callable[[NDArray[np.float64]], float], n: int
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """B's bootstrap hands per-resample means (..., d); the corpus score wants their sums."""

    def statistic(means: NDArray[np.float64]) -> NDArray[np.float64]:
        sums = np.asarray(means, dtype=np.float64) * n
        if sums.ndim == 1:
            return np.asarray(reduce(sums))
        return np.array([reduce(row) for row in sums.reshape(-1, sums.shape[-1])]).reshape(
            sums.shape[:-1]
        )

    return statistic


def _one(
    scores: MetricScores,
    rows: NDArray[np.intp],
    category: str,
    role: Role,
    *,
    alpha: float,
    acceptable_drop: float,
    resamples: int,
    seed: int,
) -> Comparison:
    control, candidate = scores.control[rows], scores.candidate[rows]
    n = len(rows)
    if scores.kind is MetricKind.JUDGE:  # a candidate score in [0, 1]: 0.5 is a tie
        return preference(
            2 * candidate - 1, metric=scores.metric, category=category, alpha=alpha, seed=seed
        )
    resampler = Resampler(n, resamples=resamples, seed=seed)
    statistic = (
        _statistic(scores.reduce, n)
        if scores.kind is MetricKind.CORPUS and scores.reduce is not None
        else None
    )
    if role == "probe":
        return bootstrap(
            control,
            candidate,
            metric=scores.metric,
            category=category,
            kind="non_inferiority",
            margin=acceptable_drop,
            scale="relative",
            alpha=alpha,
            statistic=statistic,
            resampler=resampler,
        )
    if scores.kind is MetricKind.BINARY:
        return mcnemar(control, candidate, metric=scores.metric, category=category, alpha=alpha)
    return bootstrap(
        control,
        candidate,
        metric=scores.metric,
        category=category,
        alpha=alpha,
        statistic=statistic,
        resampler=resampler,
    )


def compare_metric(
    set_name: str,
    role: Role,
    scores: MetricScores,
    *,
    alpha: float,
    acceptable_drop: float,
    resamples: int,
    seed: int,
    overall: bool = True,
) -> list[Scored]:
    """The metric over all items (when ``overall``) and within each category of two or more."""
    labels = np.asarray(scores.categories, dtype=object)
    groups: list[tuple[str, NDArray[np.intp]]] = []
    if overall:
        groups.append((OVERALL, np.arange(len(labels))))
    names: Sequence[str] = sorted(set(scores.categories))
    if len(names) > 1 or not overall:
        groups += [(c, np.flatnonzero(labels == c)) for c in names]
    out = []
    for category, rows in groups:
        if len(rows) < 2:
            continue
        comparison = _one(
            scores,
            rows,
            category,
            role,
            alpha=alpha,
            acceptable_drop=acceptable_drop,
            resamples=resamples,
            seed=seed,
        )
        out.append(
            Scored(set_name, role, comparison, primary=role == "task" and category == OVERALL)
        )
    return out
