"""Multiplicity adjustment (Holm across success metrics, Benjamini-Hochberg across categories)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from statsmodels.stats.multitest import multipletests

__all__ = ["adjust", "holm"]


def adjust(
    p_values: Sequence[float], alpha: float, method: Literal["holm", "fdr_bh"] = "holm"
) -> list[float]:
    """Adjusted p-values (statsmodels ``multipletests``); an empty list stays empty."""
    if not p_values:
        return []
    if any(not 0 <= p <= 1 for p in p_values):
        raise ValueError("p_values must lie in [0, 1]")
    _, adjusted, _, _ = multipletests(list(p_values), alpha=alpha, method=method)
    return [float(p) for p in adjusted]


def holm(p_values: dict[str, float], alpha: float) -> dict[str, bool]:
    """Which named hypotheses Holm's step-down procedure rejects at family-wise ``alpha``."""
    names = list(p_values)
    adjusted = adjust([p_values[n] for n in names], alpha, method="holm")
    return {name: p <= alpha for name, p in zip(names, adjusted, strict=True)}
