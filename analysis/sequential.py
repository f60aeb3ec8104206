"""Always-valid inference on a stream of scores in [0, 1]: confidence sequences and mSPRT.

Every function takes the stream as an array whose last axis is time and returns one value per
prefix, so one call gives the whole path (for the report's plot) and a 2-D array gives many
Monte-Carlo runs at once. Nothing here knows about Redis or decisions.

- :func:`asymptotic_cs` — the asymptotic confidence sequence of Waudby-Smith et al. (2021,
  "Time-uniform central limit theory"), a Gaussian mixture boundary around the running mean,
  tuned to be tightest near a planned sample size.
- :func:`eb_cs` — the predictable plug-in empirical-Bernstein confidence sequence of
  Waudby-Smith & Ramdas (2023, "Estimating means of bounded random variables by betting"):
  non-asymptotic, valid from the first observation, so it is the one used for small n.
- :func:`msprt_log_evalue`, :func:`msprt_pvalue`, :func:`msprt_lower_bound` — a one-sided
  mixture SPRT (Johari et al. 2017) for H0: mean <= null, with a Gaussian prior on the
  standardized effect centred on the minimum detectable effect and truncated at zero; its
  always-valid p-value and the lower confidence sequence obtained by inverting it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

__all__ = [
    "Floats",
    "asymptotic_cs",
    "eb_cs",
    "msprt_log_evalue",
    "msprt_log_evalue_last",
    "msprt_lower_bound",
    "msprt_pvalue",
    "normal_mixture_log_evalue",
    "rho_squared",
]

Floats = NDArray[np.float64]

# The plug-in variance is regularised with one pseudo-observation of variance 1/4 (the maximum
# for [0, 1]), so a short run of identical scores cannot produce a zero-width interval.
_PRIOR_VAR = 0.25


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _running(x: ArrayLike) -> tuple[Floats, Floats, Floats]:
    """Prefix counts, means and regularised variances along the last axis."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape[-1] == 0:
        raise ValueError("scores must not be empty")
    t = np.arange(1, arr.shape[-1] + 1, dtype=np.float64)
    mean = np.cumsum(arr, axis=-1) / t
    raw = np.maximum(np.cumsum(arr * arr, axis=-1) / t - mean * mean, 0.0)
    var = (_PRIOR_VAR + t * raw) / (t + 1)
    return t, mean, var


def rho_squared(alpha: float, planned_n: float) -> float:
    """Mixture variance that makes the asymptotic CS tightest at ``planned_n`` observations."""
    _check_alpha(alpha)
    if planned_n <= 0:
        raise ValueError(f"planned_n must be positive, got {planned_n}")
    log_term = -2 * math.log(alpha)
    return (log_term + math.log(log_term + 1)) / planned_n


def asymptotic_cs(x: ArrayLike, alpha: float, planned_n: float) -> tuple[Floats, Floats]:
    """Two-sided (1 - alpha) asymptotic confidence sequence for the running mean.

    Returns ``(lower, upper)`` for every prefix (not intersected over time, so the report can
    show the raw sequence; callers that act on it take running extremes).
    """
    rho2 = rho_squared(alpha, planned_n)
    t, mean, var = _running(x)
    radius = np.sqrt(
        var * 2 * (t * rho2 + 1) / (t * t * rho2) * np.log(np.sqrt(t * rho2 + 1) / alpha)
    )
    return mean - radius, mean + radius


def eb_cs(x: ArrayLike, alpha: float, cap: float = 0.5) -> tuple[Floats, Floats]:
    """Two-sided (1 - alpha) empirical-Bernstein confidence sequence for scores in [0, 1].

    Running intersection included: the bounds are monotone and valid at every sample size.
    """
    _check_alpha(alpha)
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape[-1] == 0:
        raise ValueError("scores must not be empty")
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError("scores must lie in [0, 1]")
    t = np.arange(1, arr.shape[-1] + 1, dtype=np.float64)
    # mu_hat and sigma2_hat after i observations, with the regularising pseudo-observation
    mu_hat = (0.5 + np.cumsum(arr, axis=-1)) / (t + 1)
    mu_prev = np.concatenate([np.full((*arr.shape[:-1], 1), 0.5), mu_hat[..., :-1]], axis=-1)
    sq = (arr - mu_hat) ** 2
    sigma2 = (0.25 + np.cumsum(sq, axis=-1)) / (t + 1)
    sigma2_prev = np.concatenate([np.full((*arr.shape[:-1], 1), 0.25), sigma2[..., :-1]], -1)
    log_term = math.log(2 / alpha)
    lam = np.minimum(np.sqrt(2 * log_term / (sigma2_prev * t * np.log1p(t))), cap)
    psi = (-np.log1p(-lam) - lam) / 4
    v = 4 * (arr - mu_prev) ** 2
    lam_sum = np.cumsum(lam, axis=-1)
    centre = np.cumsum(lam * arr, axis=-1) / lam_sum
    radius = (log_term + np.cumsum(v * psi, axis=-1)) / lam_sum
    lower = np.maximum.accumulate(np.clip(centre - radius, 0, 1), axis=-1)
    upper = np.minimum.accumulate(np.clip(centre + radius, 0, 1), axis=-1)
    return lower, upper


def msprt_log_evalue(
    x: ArrayLike, null: float | Floats, mde: float, prior_sd_ratio: float = 0.25
) -> Floats:
    """Log mixture likelihood ratio for H0: mean <= ``null`` against mean > ``null``.

    The prior on the standardized effect is N(m, (ratio * m)^2), truncated at 0, with
    m = mde / sigma, sigma the running standard deviation (plug-in, so the guarantee is
    asymptotic). ``null`` may be an
    array broadcastable to the stream's prefixes (used by :func:`msprt_lower_bound`).
    """
    if mde <= 0 or prior_sd_ratio <= 0:
        raise ValueError("mde and prior_sd_ratio must be positive")
    t, mean, var = _running(x)
    sd = np.sqrt(var)
    m = mde / sd
    return normal_mixture_log_evalue((mean - null) * t / sd, t, m, (prior_sd_ratio * m) ** 2)


def msprt_log_evalue_last(
    x: ArrayLike, nulls: ArrayLike, mde: float, prior_sd_ratio: float = 0.25
) -> Floats:
    """:func:`msprt_log_evalue` of the whole stream only, for each of many nulls at once."""
    if mde <= 0 or prior_sd_ratio <= 0:
        raise ValueError("mde and prior_sd_ratio must be positive")
    arr = np.asarray(x, dtype=np.float64)
    t, mean, var = (float(v[-1]) for v in _running(arr))
    sd = math.sqrt(var)
    m = mde / sd
    s = (mean - np.asarray(nulls, dtype=np.float64)) * t / sd
    return normal_mixture_log_evalue(s, t, m, (prior_sd_ratio * m) ** 2)


def normal_mixture_log_evalue(s: ArrayLike, t: ArrayLike, m: ArrayLike, tau2: ArrayLike) -> Floats:
    """log of the integral over lambda >= 0 of exp(lambda s - lambda^2 t / 2) dN+(m, tau2).

    ``s`` is the standardized sum, ``t`` the count; the prior is N(m, tau2) truncated to
    lambda >= 0, so every component is a supermartingale under any mean at or below the null
    and the e-value stays small however negative ``s`` gets.
    """
    s_, t_, m_, tau2_ = (np.asarray(v, dtype=np.float64) for v in (s, t, m, tau2))
    precision = t_ + 1 / tau2_
    b = s_ + m_ / tau2_
    return np.asarray(
        -0.5 * np.log1p(tau2_ * t_)
        + b * b / (2 * precision)
        - m_ * m_ / (2 * tau2_)
        + log_ndtr(b / np.sqrt(precision))
        - log_ndtr(m_ / np.sqrt(tau2_)),
        dtype=np.float64,
    )


def msprt_pvalue(
    x: ArrayLike, null: float, mde: float, prior_sd_ratio: float = 0.25, burn_in: int = 1
) -> Floats:
    """Always-valid p-value path: min(1, 1 / largest e-value so far), looks from ``burn_in``."""
    log_e = msprt_log_evalue(x, null, mde, prior_sd_ratio)
    t = np.arange(1, log_e.shape[-1] + 1)
    log_e = np.where(t >= burn_in, log_e, -np.inf)
    return np.minimum(1.0, np.exp(-np.maximum.accumulate(log_e, axis=-1)))


def msprt_lower_bound(
    x: ArrayLike,
    alpha: float,
    mde: float,
    prior_sd_ratio: float = 0.25,
    burn_in: int = 1,
    iterations: int = 40,
) -> Floats:
    """One-sided (1 - alpha) lower confidence sequence: the smallest null the mSPRT keeps.

    Found by bisection on [0, 1] for every prefix from ``burn_in`` on (0 before), then
    intersected over time (running max).
    """
    _check_alpha(alpha)
    arr = np.asarray(x, dtype=np.float64)
    threshold = math.log(1 / alpha)
    lo = np.zeros(arr.shape, dtype=np.float64)
    hi = np.ones(arr.shape, dtype=np.float64)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        rejected = msprt_log_evalue(arr, mid, mde, prior_sd_ratio) >= threshold
        lo = np.where(rejected, mid, lo)
        hi = np.where(rejected, hi, mid)
    t = np.arange(1, arr.shape[-1] + 1)
    return np.maximum.accumulate(np.where(t >= burn_in, lo, 0.0), axis=-1)
