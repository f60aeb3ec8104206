"""Fixed-sample statistics of judge scores: win rate, intervals, sign test, ties, categories.

Scores are the candidate's score per pair in [0, 1], 0.5 a tie. A pair is a win above 0.5 and
a loss below it. The win rate is the mean score (ties count half); the decisive win share uses
only wins and losses, with Wilson and Clopper-Pearson intervals and an exact sign test.

Those three are written out with scipy.special (closed forms) rather than called through
statsmodels' ``proportion_confint``, ``sign_test`` and ``mcnemar``: the summaries run on every
look for every category, and the library calls took about 4 ms each; tests/analysis checks them
against scipy's ``binomtest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import bdtr, betaincinv, ndtri

from analysis.multiple import adjust

__all__ = [
    "CategorySummary",
    "McNemarResult",
    "WinRateSummary",
    "category_summaries",
    "correctness_from_counts",
    "paired_correctness",
    "summary_from_counts",
    "win_rate_summary",
]


@dataclass(frozen=True)
class WinRateSummary:
    """Counts, the win rate and the fixed-sample intervals and test of one set of scores."""

    n: int
    wins: int
    losses: int
    ties: int
    win_rate: float  # mean score, ties count half
    net: float  # (wins - losses) / n: the share by which the candidate wins more often
    tie_rate: float
    decisive_share: float  # wins / (wins + losses); 0.5 when none is decisive
    wilson: tuple[float, float]
    clopper_pearson: tuple[float, float]
    sign_test_p: float

    def to_json(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CategorySummary:
    """One category's win rate with its multiplicity-adjusted sign-test p-value (BH)."""

    category: str
    summary: WinRateSummary
    q_value: float

    def to_json(self) -> dict[str, object]:
        return {"category": self.category, "q_value": self.q_value, **self.summary.to_json()}


def win_rate_summary(scores: ArrayLike, alpha: float = 0.05) -> WinRateSummary:
    """Summarise one set of scores; raises ValueError when a score is outside [0, 1]."""
    arr = np.asarray(scores, dtype=np.float64)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError("scores must lie in [0, 1]")
    n = int(arr.size)
    wins = int(np.count_nonzero(arr > 0.5))
    losses = int(np.count_nonzero(arr < 0.5))
    return summary_from_counts(n, wins, losses, float(arr.mean()) if n else 0.5, alpha)


def summary_from_counts(
    n: int, wins: int, losses: int, win_rate: float, alpha: float = 0.05
) -> WinRateSummary:
    """The summary of ``n`` scores with these wins, losses and mean (the running state's)."""
    decisive = wins + losses
    if decisive:
        wilson = _wilson(wins, decisive, alpha)
        exact = _clopper_pearson(wins, decisive, alpha)
        p_value = min(1.0, 2 * float(bdtr(min(wins, losses), decisive, 0.5)))
    else:
        wilson = exact = (0.0, 1.0)
        p_value = 1.0
    return WinRateSummary(
        n=n,
        wins=wins,
        losses=losses,
        ties=n - decisive,
        win_rate=win_rate if n else 0.5,
        net=(wins - losses) / n if n else 0.0,
        tie_rate=(n - decisive) / n if n else 0.0,
        decisive_share=wins / decisive if decisive else 0.5,
        wilson=(float(wilson[0]), float(wilson[1])),
        clopper_pearson=(float(exact[0]), float(exact[1])),
        sign_test_p=float(p_value),
    )


def _wilson(k: int, n: int, alpha: float) -> tuple[float, float]:
    z = float(ndtri(1 - alpha / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    lower = float(betaincinv(k, n - k + 1, alpha / 2)) if k > 0 else 0.0
    upper = float(betaincinv(k + 1, n - k, 1 - alpha / 2)) if k < n else 1.0
    return lower, upper


def category_summaries(
    scores: ArrayLike, categories: Sequence[str], alpha: float = 0.05
) -> list[CategorySummary]:
    """Per-category summaries with Benjamini-Hochberg q-values across categories, by name."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size != len(categories):
        raise ValueError("scores and categories must have the same length")
    labels = np.asarray(categories, dtype=object)
    names = sorted(set(categories))
    summaries = [win_rate_summary(arr[labels == name], alpha) for name in names]
    q_values = adjust([s.sign_test_p for s in summaries], alpha, method="fdr_bh")
    return [CategorySummary(n, s, q) for n, s, q in zip(names, summaries, q_values, strict=True)]


@dataclass(frozen=True)
class McNemarResult:
    """Paired correctness of the two arms on checkable tasks (exact McNemar test)."""

    n: int
    candidate_accuracy: float
    control_accuracy: float
    candidate_only: int  # candidate right, control wrong
    control_only: int
    p_value: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def paired_correctness(candidate: ArrayLike, control: ArrayLike) -> McNemarResult:
    """McNemar's exact test on paired 0/1 correctness (scores >= 0.5 count as correct)."""
    cand = np.asarray(candidate, dtype=np.float64) >= 0.5
    ctrl = np.asarray(control, dtype=np.float64) >= 0.5
    if cand.shape != ctrl.shape:
        raise ValueError("candidate and control must have the same length")
    n = int(cand.size)
    return correctness_from_counts(
        n,
        int(cand.sum()),
        int(ctrl.sum()),
        int(np.count_nonzero(cand & ~ctrl)),
        int(np.count_nonzero(~cand & ctrl)),
    )


def correctness_from_counts(
    n: int, candidate: int, control: int, cand_only: int, ctrl_only: int
) -> McNemarResult:
    """McNemar's exact test from the counts (the running state's)."""
    # the exact McNemar test is the two-sided sign test on the discordant pairs
    discordant = cand_only + ctrl_only
    p_value = (
        min(1.0, 2 * float(bdtr(min(cand_only, ctrl_only), discordant, 0.5))) if discordant else 1.0
    )
    return McNemarResult(
        n=n,
        candidate_accuracy=candidate / n if n else 0.0,
        control_accuracy=control / n if n else 0.0,
        candidate_only=cand_only,
        control_only=ctrl_only,
        p_value=p_value,
    )
