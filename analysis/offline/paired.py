"""Paired statistics of the offline gate: one ``Comparison`` per metric and category.

Both arms answer the same items, so every test is paired:

- :func:`mcnemar`: exact McNemar for per-item binary outcomes (correct / not). The two-sided p is
  statsmodels'; the one-sided p-values are the same exact binomial test on the discordant pairs
  (scipy ``binomtest``) and the interval is the Clopper-Pearson interval of that binomial mapped
  to the difference, so interval and test always agree.
- :func:`bootstrap`: paired bootstrap (items resampled jointly, one resample shared by both arms and
  by every statistic of the call) for means, relative changes and corpus metrics built from
  additive per-item statistics (BLEU's n-gram counts, retrieval hits). Vectorised: a resample is a
  row of multinomial counts, so the resampled means are one matrix product.
- :func:`permutation`: sign-flip permutation test (vectorised; checked against scipy's
  ``permutation_test``) for judge scores,
  and :func:`preference` for pairwise judge outcomes (+1 candidate wins, -1 control, 0 tie).

Conventions. ``diff`` is candidate minus control on ``scale`` (absolute, or relative: candidate /
control - 1). Each comparison tests two one-sided nulls at the boundary ``-margin``:
``p`` is for H0 diff <= -margin (rejecting it is the pass claim: superiority when margin is 0,
non-inferiority otherwise) and ``p_regression`` for H0 diff >= -margin (rejecting it names a
regression). The interval is two-sided at ``confidence`` = 1 - 2 alpha, the interval that matches
one-sided tests at alpha. :func:`holm` adjusts each family across metrics x categories and
:func:`holm_gate` as the gate needs it (regression claims of task and probes in one family);
:func:`verdict` reads pass / warn / fail / inconclusive and :func:`items_needed` how many items
would settle an inconclusive one. :func:`minimum_detectable_effect` is printed before the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.power import TTestPower

__all__ = [
    "DEFAULT_RESAMPLES",
    "OVERALL",
    "PLANNING_SD",
    "Comparison",
    "Kind",
    "Resampler",
    "Scale",
    "Statistic",
    "TestName",
    "Verdict",
    "binary_sd",
    "bootstrap",
    "holm",
    "holm_adjust",
    "holm_gate",
    "items_needed",
    "mcnemar",
    "mcnemar_two_sided",
    "minimum_detectable_effect",
    "permutation",
    "preference",
    "sign_flip_p",
    "verdict",
]

Kind = Literal["superiority", "non_inferiority"]
Scale = Literal["absolute", "relative"]
TestName = Literal["mcnemar", "bootstrap", "permutation"]
Verdict = Literal["pass", "warn", "fail", "inconclusive"]
FloatArray = NDArray[np.float64]
#: Maps per-resample means of the additive per-item statistics, shape (..., k), to the metric (...).
Statistic = Callable[[FloatArray], FloatArray]

#: The category name of a comparison over all items.
OVERALL = "all"
#: Bootstrap resamples by default: the smallest p is 1 / 4001, below Holm's first threshold for
#: 100 comparisons at alpha 0.05.
DEFAULT_RESAMPLES = 4000
#: Standard deviation of a paired per-item difference assumed before the run (a binary metric
#: with a quarter of the items discordant, or [0, 1] scores that often disagree).
PLANNING_SD = 0.5


@dataclass(frozen=True, slots=True)
class Comparison:
    """One paired comparison of candidate against control on one metric and category."""

    metric: str
    category: str
    n: int
    control: float
    candidate: float
    diff: float
    ci_low: float
    ci_high: float
    p: float  # H0: diff <= -margin (rejected: superiority / non-inferiority shown)
    kind: Kind
    margin: float
    test: TestName
    scale: Scale = "absolute"
    confidence: float = 0.90
    se: float = 0.0  # standard error of diff (for items_needed)
    p_regression: float = 1.0  # H0: diff >= -margin (rejected: a regression)
    p_adjusted: float | None = None  # Holm across the family, set by holm()
    p_regression_adjusted: float | None = None

    @property
    def p_pass(self) -> float:
        """The p-value the pass claim is judged on: Holm-adjusted once :func:`holm` ran."""
        return self.p if self.p_adjusted is None else self.p_adjusted

    @property
    def p_fail(self) -> float:
        """The p-value a regression is judged on: Holm-adjusted once :func:`holm` ran."""
        return (
            self.p_regression if self.p_regression_adjusted is None else self.p_regression_adjusted
        )

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready fields."""
        return asdict(self)


def _check(alpha: float, margin: float, kind: Kind) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if kind == "superiority" and margin != 0:
        raise ValueError("a superiority comparison has margin 0; use kind='non_inferiority'")


def _paired(control: ArrayLike, candidate: ArrayLike) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(control, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"control and candidate must pair item by item: {a.shape} != {b.shape}")
    if a.shape[0] == 0:
        raise ValueError("no items to compare")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-item values must be finite")
    return a, b


def mcnemar(
    control: ArrayLike,
    candidate: ArrayLike,
    *,
    metric: str,
    category: str = OVERALL,
    alpha: float = 0.05,
) -> Comparison:
    """Exact McNemar (superiority) on per-item binary outcomes; diff is the accuracy difference."""
    _check(alpha, 0.0, "superiority")
    a, b = _paired(control, candidate)
    if not (np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        raise ValueError("mcnemar needs binary per-item outcomes (0/1 or bool)")
    n = a.size
    wins = int(np.sum((b == 1) & (a == 0)))  # candidate right, control wrong
    losses = int(np.sum((b == 0) & (a == 1)))
    discordant = wins + losses
    diff = (wins - losses) / n
    confidence = 1 - 2 * alpha
    if discordant == 0:
        p_greater = p_less = 1.0
        ci_low = ci_high = 0.0
    else:
        test = stats.binomtest(wins, discordant, 0.5, alternative="greater")
        p_greater = float(test.pvalue)
        p_less = float(stats.binomtest(wins, discordant, 0.5, alternative="less").pvalue)
        two_sided = stats.binomtest(wins, discordant, 0.5)
        ci = two_sided.proportion_ci(confidence_level=confidence, method="exact")
        # A win share pi among the discordant pairs is a difference (2 pi - 1) * discordant / n.
        ci_low = (2 * float(ci.low) - 1) * discordant / n
        ci_high = (2 * float(ci.high) - 1) * discordant / n
    sd = math.sqrt(max(discordant / n - diff**2, 0.0))
    return Comparison(
        metric=metric,
        category=category,
        n=n,
        control=float(a.mean()),
        candidate=float(b.mean()),
        diff=diff,
        ci_low=ci_low,
        ci_high=ci_high,
        p=p_greater,
        kind="superiority",
        margin=0.0,
        test="mcnemar",
        confidence=confidence,
        se=sd / math.sqrt(n),
        p_regression=p_less,
    )


def mcnemar_two_sided(control: ArrayLike, candidate: ArrayLike) -> float:
    """statsmodels' exact two-sided McNemar p (reported beside the one-sided p-values)."""
    a, b = _paired(control, candidate)
    table = [
        [int(np.sum((a == 1) & (b == 1))), int(np.sum((a == 1) & (b == 0)))],
        [int(np.sum((a == 0) & (b == 1))), int(np.sum((a == 0) & (b == 0)))],
    ]
    return float(sm_mcnemar(table, exact=True).pvalue)


class Resampler:
    """Bootstrap resamples of n items as rows of multinomial counts, drawn once per seed.

    One resampler shared by every metric of a run resamples the items jointly across arms and
    metrics; rows are drawn in chunks so memory stays at chunk x n.
    """

    def __init__(self, n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> None:
        if n < 1 or resamples < 100:
            raise ValueError("need n >= 1 items and at least 100 resamples")
        self.n = n
        self.resamples = resamples
        self.seed = seed
        self._chunk = max(1, min(resamples, 4_000_000 // n))
        self._weights: list[NDArray[np.float32]] | None = None

    def _chunks(self) -> list[NDArray[np.float32]]:
        if self._weights is None:
            rng = np.random.default_rng(self.seed)
            chunks: list[NDArray[np.float32]] = []
            for start in range(0, self.resamples, self._chunk):
                rows = min(self._chunk, self.resamples - start)
                # int32: a chunk holds at most 4M indices, and int32 halves the memory traffic
                idx = rng.integers(0, self.n, size=(rows, self.n), dtype=np.int32)
                idx += np.arange(rows, dtype=np.int32)[:, None] * np.int32(self.n)
                counts = np.bincount(idx.ravel(), minlength=rows * self.n)
                chunks.append(counts.reshape(rows, self.n).astype(np.float32))
            self._weights = chunks
        return self._weights

    def means(self, values: FloatArray) -> FloatArray:
        """Per-resample means of each column of ``values`` (n, k): shape (resamples, k)."""
        if values.shape[0] != self.n:
            raise ValueError(f"values have {values.shape[0]} items, the resampler {self.n}")
        x = values.astype(np.float32)
        out = [w @ x for w in self._chunks()]
        return np.concatenate(out).astype(np.float64) / self.n


def _mean(means: FloatArray) -> FloatArray:
    return means[..., 0]


def _bootstrap_p(replicates: FloatArray, boundary: float) -> tuple[float, float]:
    count = replicates.size
    below = int(np.sum(replicates <= boundary))
    above = int(np.sum(replicates >= boundary))
    return (1 + below) / (count + 1), (1 + above) / (count + 1)


def bootstrap(
    control: ArrayLike,
    candidate: ArrayLike,
    *,
    metric: str,
    category: str = OVERALL,
    kind: Kind = "superiority",
    margin: float = 0.0,
    scale: Scale = "absolute",
    alpha: float = 0.05,
    statistic: Statistic | None = None,
    resampler: Resampler | None = None,
    seed: int = 0,
) -> Comparison:
    """Paired bootstrap of statistic(candidate) - statistic(control) (or their relative change).

    ``control`` and ``candidate`` hold one value per item (n,) or k additive statistics per item
    (n, k); ``statistic`` maps their means (..., k) to the metric (default: the mean of column 0).
    On the relative scale a control of 0 leaves no relative change, and the absolute one is used
    (recorded in ``scale``). Replicates are spread by sqrt(n / (n - 1)) around the estimate, the
    bootstrap's known variance shortfall for a mean, so small probe categories are not too sure.
    """
    _check(alpha, margin, kind)
    a, b = _paired(control, candidate)
    a2 = a.reshape(a.shape[0], -1)
    b2 = b.reshape(b.shape[0], -1)
    n, k = a2.shape
    stat = statistic or _mean
    sampler = resampler or Resampler(n, seed=seed)
    means = sampler.means(np.concatenate([a2, b2], axis=1))
    ctrl_star, cand_star = stat(means[:, :k]), stat(means[:, k:])
    ctrl, cand = float(stat(a2.mean(axis=0))), float(stat(b2.mean(axis=0)))
    if scale == "relative" and ctrl == 0:
        scale = "absolute"
    if scale == "relative":
        with np.errstate(divide="ignore", invalid="ignore"):
            star = np.where(ctrl_star == 0, 0.0, cand_star / ctrl_star - 1)
        diff = cand / ctrl - 1
    else:
        star = cand_star - ctrl_star
        diff = cand - ctrl
    if n > 1:
        star = diff + math.sqrt(n / (n - 1)) * (star - diff)
    low, high = np.quantile(star, [alpha, 1 - alpha])
    p_pass, p_regression = _bootstrap_p(star, -margin)
    return Comparison(
        metric=metric,
        category=category,
        n=n,
        control=ctrl,
        candidate=cand,
        diff=diff,
        ci_low=float(low),
        ci_high=float(high),
        p=p_pass,
        kind=kind,
        margin=margin,
        test="bootstrap",
        scale=scale,
        confidence=1 - 2 * alpha,
        se=float(np.std(star, ddof=1)),
        p_regression=p_regression,
    )


def sign_flip_p(
    differences: ArrayLike, resamples: int = 9999, seed: int = 0
) -> tuple[float, float]:
    """One-sided p-values (mean > 0, mean < 0) of the sign-flip permutation test.

    The same test as scipy's ``permutation_test(permutation_type="samples")`` on one sample
    (the tests compare them), vectorised here as a matrix product of random signs because
    scipy's generator of pairings costs ~50 ms a call, which dominates a Monte Carlo. All 2**n
    flips are enumerated (exact) when 2**n <= resamples; otherwise ``resamples`` are drawn and
    the observed one counted in (p = (1 + hits) / (resamples + 1)).
    """
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    observed = float(d.mean())
    tolerance = abs(observed) * 1e-12 + 1e-15  # scipy's allowance for rounding ties
    if n < 31 and 2**n <= resamples:
        codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)
        null = ((codes & 1) * 2 - 1).astype(np.float64) @ d / n
        greater = int(np.sum(null >= observed - tolerance))
        less = int(np.sum(null <= observed + tolerance))
        return greater / null.size, less / null.size
    # Random bits from random bytes; a flip vector s = 2 bits - 1 gives mean = (2 bits.d - sum d)/n.
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // n)
    total = float(d.sum())
    d32 = d.astype(np.float32)
    greater = less = 0
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        packed = rng.integers(0, 256, size=(rows, (n + 7) // 8), dtype=np.uint8)
        bits = np.unpackbits(packed, axis=1, count=n).astype(np.float32)
        null = (2 * (bits @ d32).astype(np.float64) - total) / n
        greater += int(np.sum(null >= observed - tolerance))
        less += int(np.sum(null <= observed + tolerance))
    return (1 + greater) / (resamples + 1), (1 + less) / (resamples + 1)


def permutation(
    control: ArrayLike,
    candidate: ArrayLike,
    *,
    metric: str,
    category: str = OVERALL,
    kind: Kind = "superiority",
    margin: float = 0.0,
    alpha: float = 0.05,
    resamples: int = 9999,
    seed: int = 0,
    resampler: Resampler | None = None,
) -> Comparison:
    """Sign-flip permutation test of the mean paired difference of judge scores (absolute scale).

    Under H0 the arms are exchangeable within an item, so each difference's sign may flip; the
    null is shifted to the margin (the differences plus margin). See :func:`sign_flip_p`. The
    interval is the paired bootstrap's.
    """
    _check(alpha, margin, kind)
    a, b = _paired(control, candidate)
    if a.ndim != 1:
        raise ValueError("permutation takes one score per item")
    p_greater, p_less = sign_flip_p(b - a + margin, resamples, seed)
    interval = bootstrap(
        a, b, metric=metric, category=category, alpha=alpha, seed=seed, resampler=resampler
    )
    return replace(
        interval,
        kind=kind,
        margin=margin,
        test="permutation",
        p=p_greater,
        p_regression=p_less,
    )


def preference(
    outcomes: ArrayLike,
    *,
    metric: str,
    category: str = OVERALL,
    alpha: float = 0.05,
    resamples: int = 9999,
    seed: int = 0,
    resampler: Resampler | None = None,
) -> Comparison:
    """Pairwise judge outcomes per item (+1 candidate wins, -1 control wins, 0 tie; both orders
    averaged may give +-0.5): control and candidate are the win shares, diff their difference."""
    o = np.asarray(outcomes, dtype=np.float64)
    if o.ndim != 1 or o.size == 0 or np.any(np.abs(o) > 1):
        raise ValueError("preference outcomes are one value in [-1, 1] per item")
    result = permutation(
        np.zeros_like(o),
        o,
        metric=metric,
        category=category,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
        resampler=resampler,
    )
    return replace(
        result,
        control=float(np.mean(np.clip(-o, 0, None))),
        candidate=float(np.mean(np.clip(o, 0, None))),
    )


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the k-th smallest times (m - k + 1), made monotone.

    Hand-written (the few lines the method is) because statsmodels' ``multipletests`` runs a
    full ``gc.collect()`` on every call (~0.1 s here), which dominated the A/A Monte Carlo; the
    tests check it against ``multipletests(method="holm")``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, kind="stable")
    scaled = (p.size - np.arange(p.size)) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return [float(x) for x in adjusted]


def holm(comparisons: Sequence[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Holm across the comparisons (metrics x categories), each family of claims on its own:
    the pass p-values and the regression p-values. ``alpha`` is kept for the call's symmetry with
    :func:`verdict`; adjusted p-values do not depend on it."""
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    adjusted = holm_adjust([c.p for c in comparisons])
    adjusted_regression = holm_adjust([c.p_regression for c in comparisons])
    return [
        replace(c, p_adjusted=p, p_regression_adjusted=q)
        for c, p, q in zip(comparisons, adjusted, adjusted_regression, strict=True)
    ]


def holm_gate(
    task: Sequence[Comparison], probes: Sequence[Comparison]
) -> tuple[list[Comparison], list[Comparison]]:
    """Holm as the gate reads it: pass claims within their own family (the task's superiority,
    the probes' non-inferiority), regression claims across task and probes together — so the
    chance that an unchanged model fails the run anywhere stays at alpha (the A/A study)."""
    regression = holm_adjust([c.p_regression for c in [*task, *probes]])
    passes = holm_adjust([c.p for c in task]) + holm_adjust([c.p for c in probes])
    both = [
        replace(c, p_adjusted=p, p_regression_adjusted=q)
        for c, p, q in zip([*task, *probes], passes, regression, strict=True)
    ]
    return both[: len(task)], both[len(task) :]


def verdict(comparison: Comparison, alpha: float = 0.05, fail_drop: float | None = None) -> Verdict:
    """pass (the claim of its kind holds), fail (a regression is shown and, given ``fail_drop``,
    its estimated drop is at least that), warn (a regression smaller than ``fail_drop``) or
    inconclusive. Uses the Holm-adjusted p-values once :func:`holm` ran."""
    if comparison.p_pass <= alpha:
        return "pass"
    if comparison.p_fail <= alpha:
        if fail_drop is None or comparison.diff <= -fail_drop:
            return "fail"
        return "warn"
    return "inconclusive"


def _z(alpha: float, power: float) -> float:
    return float(stats.norm.ppf(1 - alpha) + stats.norm.ppf(power))


def minimum_detectable_effect(
    n: int, *, alpha: float = 0.05, power: float = 0.8, sd: float = PLANNING_SD, tests: int = 1
) -> float:
    """Smallest true paired difference (distance from the margin) a one-sided paired t-test on
    ``n`` items detects with ``power`` (statsmodels ``TTestPower``), at alpha / tests — the
    Bonferroni bound of Holm's first step when ``tests`` comparisons are made."""
    if n < 2 or sd <= 0 or tests < 1:
        raise ValueError("need n >= 2 items, sd > 0 and tests >= 1")
    if not 0 < alpha < 0.5 or not 0 < power < 1:
        raise ValueError("alpha must be in (0, 0.5) and power in (0, 1)")
    effect = TTestPower().solve_power(
        nobs=n, alpha=alpha / tests, power=power, alternative="larger"
    )
    return float(effect) * sd


def binary_sd(discordance: float, diff: float = 0.0) -> float:
    """Standard deviation of a paired binary difference with this share of discordant items."""
    if not 0 <= discordance <= 1 or abs(diff) > discordance:
        raise ValueError("discordance must be in [0, 1] and at least |diff|")
    return math.sqrt(discordance - diff**2)


def items_needed(
    comparison: Comparison, *, alpha: float = 0.05, power: float = 0.8, tests: int = 1
) -> int | None:
    """More items that would settle an inconclusive comparison if its estimate held: the normal
    sample size for distance |diff + margin| at its standard error. 0 when it is already settled;
    None when the estimate sits on the margin or has no spread (no number of items settles it)."""
    distance = abs(comparison.diff + comparison.margin)
    sd = comparison.se * math.sqrt(comparison.n)
    if distance == 0 or sd == 0:
        return None
    needed = math.ceil((_z(alpha / tests, power) * sd / distance) ** 2)
    return max(0, needed - comparison.n)
