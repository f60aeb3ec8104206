"""Multiplicity adjustment: Holm's step-down and Benjamini-Hochberg, a few lines of numpy each.

Hand-written on purpose: statsmodels' ``multipletests`` runs ``gc.collect()`` on every call,
which made one ``decide()`` about six times slower, and more so as a long-running controller's
heap grows (bench/analysis measures it). tests/analysis checks both against statsmodels. Holm's
procedure stays valid on always-valid p-values: a true hypothesis is rejected at some time only
if its p-value ever falls below alpha over the number of true hypotheses, which each always-valid
p-value does with probability at most that level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["adjust", "holm"]


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")[::-1]
    ranks = np.arange(m, 0, -1)
    stepped = np.minimum.accumulate(m / ranks * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(
    p_values: Sequence[float], alpha: float, method: Literal["holm", "fdr_bh"] = "holm"
) -> list[float]:
    """Adjusted p-values (reject where adjusted <= ``alpha``); an empty list stays empty."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=np.float64)
    if np.any(~(p >= 0) | ~(p <= 1)):
        raise ValueError("p_values must lie in [0, 1]")
    return [float(v) for v in (_holm(p) if method == "holm" else _bh(p))]


def holm(p_values: dict[str, float], alpha: float) -> dict[str, bool]:
    """Which named hypotheses Holm's step-down procedure rejects at family-wise ``alpha``."""
    names = list(p_values)
    adjusted = adjust([p_values[n] for n in names], alpha, method="holm")
    return {name: p <= alpha for name, p in zip(names, adjusted, strict=True)}
