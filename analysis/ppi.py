"""The judge-corrected win rate: prediction-powered inference on human labels and judge scores.

A judge's win rate is biased when the judge is (it prefers longer answers, the first slot, its
own family). Prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan and Zrnic,
Science 2023) corrects it with a small random sample of pairs a person labelled: the judge's mean
over the unlabelled pairs plus the mean of (human - judge) over the labelled ones, the
"rectifier". Its interval is valid whatever the judge's bias; the better the judge agrees with
people, the narrower it is. We use the power-tuned form (PPI++, Angelopoulos, Duchi and Zrnic
2023): the judge's weight ``lam`` in [0, 1] is chosen from the data to minimise the variance, so
a useless judge (lam 0) never does worse than the labels alone (the classical interval).

Hand-written with numpy and scipy rather than the ``ppi-python`` package: that package pulls
numba, pandas, scikit-learn and gdown into the analysis install for the ten lines of its
``ppi_mean_ci``, which is this estimator (tests/analysis/test_ppi.py checks it against the
formula and by Monte Carlo; bench/analysis/ppi_coverage.py has the full coverage figure).

``lower``/``upper`` is a fixed-sample interval (a normal approximation at one look): the figure
shown. Read again after every few labels it would cover the truth less and less often, so what
drives a decision is ``cs_lower``/``cs_upper``, an asymptotic confidence sequence
(Waudby-Smith, Arnold, Wu, Ramdas and Ruf, "Time-uniform central limit theory and asymptotic
confidence sequences", Ann. Statist. 2024, Robbins' normal mixture boundary) applied to each
of the PPI estimator's two means: the rectifier over the labels and the judge's mean over the
unlabelled pairs, each at half of alpha (a union bound). Each boundary's mixing width is fixed
in advance by a planned sample size (``planned_labels``, ``planned_pairs``): it is tightest
there and valid at every look. Valid as the samples grow (an asymptotic CS), with the tuned
``lam`` converging to its limit. bench/analysis/ppi_coverage.py --looks checks it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from analysis.sequential import rho_squared

__all__ = ["CorrectedEstimate", "asymptotic_cs_radius", "corrected_win_rate", "judge_only_interval"]


@dataclass(frozen=True, slots=True)
class CorrectedEstimate:
    """The corrected win rate, its interval, and the raw figures it is read beside."""

    estimate: float
    lower: float
    upper: float
    alpha: float
    labelled: int  # pairs with a human label (and a judge score)
    unlabelled: int  # judged pairs without a label
    lam: float  # the judge's weight (0: labels only, 1: plain PPI)
    judge_mean: float  # the raw judge win rate over every judged pair
    human_mean: float  # the labelled pairs' human win rate
    judge_on_labelled: float  # the judge's win rate on the labelled pairs
    agreement: float  # share of labelled pairs where judge and human pick the same side
    cs_lower: float = math.nan  # the always-valid interval (an asymptotic confidence sequence)
    cs_upper: float = math.nan

    def to_json(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def _unit(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size and (not np.all(np.isfinite(arr)) or np.any((arr < 0) | (arr > 1))):
        raise ValueError(f"{name}: every value must be a finite number in [0, 1]")
    return arr


def _side(values: np.ndarray) -> np.ndarray:
    return np.sign(values - 0.5)


def corrected_win_rate(
    human: ArrayLike,
    judge_labelled: ArrayLike,
    judge_unlabelled: ArrayLike,
    alpha: float = 0.05,
    *,
    lam: float | None = None,
    planned_labels: float = 30,
    planned_pairs: float = 1000,
) -> CorrectedEstimate:
    """The PPI++ mean of the human score (1 candidate better, 0.5 tie, 0 control better).

    ``human[i]`` and ``judge_labelled[i]`` belong to the same labelled pair; ``judge_unlabelled``
    holds the judge's scores on the other judged pairs. ``lam`` fixes the judge's weight (1 is
    the original PPI); None tunes it. ``planned_labels`` and ``planned_pairs`` fix where the
    confidence sequence is tightest; they must not depend on the data. Raises ValueError on
    mismatched lengths, values outside [0, 1], fewer than two labels or alpha outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    y = _unit("human", human)
    f = _unit("judge_labelled", judge_labelled)
    u = _unit("judge_unlabelled", judge_unlabelled)
    if y.size != f.size:
        raise ValueError(f"human ({y.size}) and judge_labelled ({f.size}) must have one length")
    n, big_n = int(y.size), int(u.size)
    if n < 2:
        raise ValueError(f"at least two labelled pairs are needed, got {n}")
    if lam is None:
        lam = _tuned_lambda(y, f, u)
    elif not 0 <= lam <= 1:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    rectifier = y - lam * f
    estimate = float(rectifier.mean() + (lam * u.mean() if big_n else lam * f.mean()))
    rect_var = float(rectifier.var(ddof=1))
    judge_var = lam**2 * float(u.var(ddof=1)) if big_n > 1 else 0.0
    variance = rect_var / n + (judge_var / big_n if big_n > 1 else 0.0)
    half = float(norm.ppf(1 - alpha / 2)) * math.sqrt(max(variance, 0.0))
    # the always-valid radius: each mean's own confidence sequence at alpha / 2. The rectifier's
    # variance gets a prior observation of 1/4 (as the betting CSs of Waudby-Smith and Ramdas
    # do): thirty unanimous labels have sample variance 0, which a CS must not take at its word.
    rect_prior = (0.25 + rect_var * (n - 1)) / n
    cs_half = asymptotic_cs_radius(rect_prior, n, alpha / 2, planned_labels)
    if big_n > 1:
        cs_half += asymptotic_cs_radius(judge_var, big_n, alpha / 2, planned_pairs)
    judged = np.concatenate([f, u])
    return CorrectedEstimate(
        estimate=estimate,
        lower=max(0.0, estimate - half),
        upper=min(1.0, estimate + half),
        alpha=alpha,
        labelled=n,
        unlabelled=big_n,
        lam=float(lam),
        judge_mean=float(judged.mean()),
        human_mean=float(y.mean()),
        judge_on_labelled=float(f.mean()),
        agreement=float(np.mean(_side(y) == _side(f))),
        cs_lower=max(0.0, estimate - cs_half),
        cs_upper=min(1.0, estimate + cs_half),
    )


def asymptotic_cs_radius(variance: float, n: int, alpha: float, planned: float) -> float:
    """Half-width at sample ``n`` of the two-sided asymptotic CS for a mean, at level ``alpha``.

    The boundary of analysis/sequential.py's ``asymptotic_cs`` (Robbins' normal mixture, its
    width tuned to be tightest at ``planned`` observations), at one look from a variance.
    """
    if n < 1:
        return math.inf
    rho2 = rho_squared(alpha, max(planned, 1))
    inner = 2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    return math.sqrt(max(variance, 0.0) * inner)


def _tuned_lambda(y: np.ndarray, f: np.ndarray, u: np.ndarray) -> float:
    """The variance-minimising weight cov(Y, f) / ((1 + n/N) var(f)), clipped to [0, 1]."""
    n, big_n = y.size, u.size
    pooled = np.concatenate([f, u])
    var_f = float(pooled.var(ddof=1)) if pooled.size > 1 else 0.0
    if var_f <= 0 or big_n == 0:
        return 0.0 if big_n == 0 else 1.0
    cov = float(np.cov(y, f, ddof=1)[0, 1])
    return float(np.clip(cov / ((1 + n / big_n) * var_f), 0.0, 1.0))


def judge_only_interval(judge: ArrayLike, alpha: float = 0.05) -> tuple[float, float, float]:
    """The naive figure PPI corrects: the judge's mean and its normal interval, as if unbiased."""
    scores = _unit("judge", judge)
    if scores.size < 2:
        raise ValueError(f"at least two judge scores are needed, got {scores.size}")
    mean = float(scores.mean())
    half = float(norm.ppf(1 - alpha / 2)) * float(scores.std(ddof=1)) / math.sqrt(scores.size)
    return mean, max(0.0, mean - half), min(1.0, mean + half)
