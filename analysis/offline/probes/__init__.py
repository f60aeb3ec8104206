"""Capability-regression probes: the shipped general suite, user suites, per-category drops.

The general suite (``general.jsonl`` beside this file, 128 items) covers reasoning,
arithmetic, facts, instruction following and code. Every item has a key: answer items carry
``checks`` (rubric checks of analysis/offline/metrics.py: a word-bounded regex on the key
answer, or checkable sub-criteria for instruction following), all of which must pass; code
items carry ``tests`` that run against the answer's function (pass@1). Each item's
``reference`` is an answer that passes its own key (the tests hold the suite to that).

A user suite is a JSONL or CSV file in the same shape (analysis/offline/items.py reads both).
The drop per category is relative to the control: candidate / control - 1, judged by
non-inferiority (analysis/offline/paired.py) against the acceptable and fail margins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from analysis.offline.items import EvalItem, load_items
from analysis.offline.paired import Comparison, bootstrap, holm

__all__ = [
    "GENERAL",
    "SUITE_METRICS",
    "load_suite",
    "metric_for",
    "probe_comparisons",
    "relative_drops",
    "suite_path",
]

#: The shipped suite's name in a spec (``probes: [{suite: general}]``).
GENERAL = "general"
#: The metric that scores each category of a suite: code runs its tests, the rest their checks.
SUITE_METRICS = {"code": "pass@1"}
_DEFAULT_METRIC = "probe"


def suite_path(suite: str) -> Path:
    """``general`` -> the shipped file; anything else is a path to a user suite."""
    if suite == GENERAL:
        return Path(__file__).with_name("general.jsonl")
    return Path(suite)


def metric_for(item: EvalItem) -> str:
    """pass@1 for an item with tests, else ``probe`` (all checks, or the key answer)."""
    return "pass@1" if item.tests else SUITE_METRICS.get(item.category, _DEFAULT_METRIC)


def load_suite(suite: str, limit_per_category: int | None = None) -> list[EvalItem]:
    """The probes of a suite (file order), at most ``limit_per_category`` of each category."""
    items = load_items(suite_path(suite))
    if limit_per_category is None:
        return items
    kept: list[EvalItem] = []
    seen: dict[str, int] = {}
    for item in items:
        seen[item.category] = seen.get(item.category, 0) + 1
        if seen[item.category] <= limit_per_category:
            kept.append(item)
    return kept


def relative_drops(
    control: ArrayLike, candidate: ArrayLike, categories: Sequence[str]
) -> dict[str, float]:
    """Per category: 1 - candidate mean / control mean (0 where the control scores 0)."""
    a = np.asarray(control, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    cats = np.asarray(categories)
    if not a.shape == b.shape == cats.shape:
        raise ValueError("one control score, candidate score and category per probe")
    out = {}
    for category in sorted(set(categories)):
        rows = cats == category
        base = float(a[rows].mean())
        out[category] = 0.0 if base == 0 else 1 - float(b[rows].mean()) / base
    return out


def probe_comparisons(
    control: ArrayLike,
    candidate: ArrayLike,
    categories: Sequence[str],
    *,
    acceptable_drop: float = 0.05,
    alpha: float = 0.05,
    metric: str = "probe",
    seed: int = 0,
) -> list[Comparison]:
    """Non-inferiority per category on the relative scale, Holm-adjusted across categories.

    Read each with ``verdict(c, alpha, fail_drop)``: pass (the drop is shown within
    ``acceptable_drop``), warn or fail (a drop shown beyond it; fail from ``fail_drop``).
    """
    a = np.asarray(control, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    cats = np.asarray(categories)
    comparisons = [
        bootstrap(
            a[cats == category],
            b[cats == category],
            metric=metric,
            category=category,
            kind="non_inferiority",
            margin=acceptable_drop,
            scale="relative",
            alpha=alpha,
            seed=seed,
        )
        for category in sorted(set(categories))
    ]
    return holm(comparisons, alpha)
