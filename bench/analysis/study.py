"""Vectorized Monte Carlo of the judge gate, looking after every batch, beside naive testing.

Each run is a stream of pair scores (win 1, tie 0.5, loss 0) with a fixed tie rate; the win
rate is 0.5 + effect. The gate is the one analysis/decide.py applies to judge evidence: after
the burn-in, at every look, promote when the mSPRT rejects "win rate <= bar" at alpha, and roll
back when the asymptotic confidence sequence's upper bound falls below 0.5 - loss margin
(whichever comes first ends the run). The naive rule runs a one-sided fixed-sample z-test at
every look. The fixed-horizon sample is that of a one-sided z-test at alpha with 80% power at
the MDE (analysis/power.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta as beta_dist
from scipy.stats import norm

from analysis.power import fixed_horizon_n
from analysis.sequential import Floats, asymptotic_cs, msprt_log_evalue

__all__ = ["StudyConfig", "StudyResult", "run_study", "simulate_scores", "stopping_times"]


@dataclass(frozen=True)
class StudyConfig:
    runs: int = 2000
    seed: int = 20240611
    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.05  # on the win-rate scale
    tie_rate: float = 0.3
    batch: int = 10  # look after every batch of this many pairs
    burn_in: int = 100
    loss_margin: float = 0.05
    prior_sd_ratio: float = 0.25
    aa_horizon: float = 4.0  # A/A runs last this many fixed-horizon samples
    chunk: int = 1000  # runs simulated at once (bounds memory)


@dataclass(frozen=True)
class StudyResult:
    runs: int
    fixed_horizon_n: float
    aa_false_promotion: float
    aa_false_promotion_upper95: float
    naive_false_promotion: float
    median_stop_ratio_2mde: float  # median stopping sample at 2x MDE / fixed-horizon n
    power_at_1_7: float  # share promoted by 1.7x the fixed-horizon n at the MDE
    seconds: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def simulate_scores(
    rng: np.random.Generator, runs: int, n: int, effect: float, tie_rate: float
) -> Floats:
    """Scores for ``runs`` streams of ``n`` pairs with win rate 0.5 + ``effect``."""
    decisive = (1 - tie_rate) / 2
    p_win, p_loss = decisive + effect, decisive - effect
    if p_loss < 0:
        raise ValueError("effect too large for the tie rate")
    u = rng.random((runs, n))
    return np.where(u < p_win, 1.0, np.where(u < p_win + p_loss, 0.0, 0.5))


def stopping_times(scores: Floats, cfg: StudyConfig) -> tuple[Floats, Floats]:
    """(promotion look, naive-rule promotion look) per run, ``inf`` when it never fires."""
    n = scores.shape[-1]
    t = np.arange(1, n + 1)
    looks = (t >= cfg.burn_in) & (t % cfg.batch == 0)
    log_e = msprt_log_evalue(scores, 0.5, cfg.mde, cfg.prior_sd_ratio)
    promote = looks & (log_e >= math.log(1 / cfg.alpha))
    _, upper = asymptotic_cs(scores, cfg.alpha, _planned(cfg))
    roll_back = looks & (upper < 0.5 - cfg.loss_margin)
    first_promote = _first(promote, t)
    promoted = np.where(first_promote < _first(roll_back, t), first_promote, np.inf)
    mean = np.cumsum(scores, axis=-1) / t
    sd = np.sqrt(np.maximum(np.cumsum(scores * scores, axis=-1) / t - mean * mean, 1e-12))
    z = (mean - 0.5) / (sd / np.sqrt(t))
    naive = looks & (z > norm.ppf(1 - cfg.alpha))
    return promoted, _first(naive, t)


def _first(hits: np.ndarray, t: np.ndarray) -> Floats:
    return np.where(hits.any(axis=-1), t[hits.argmax(axis=-1)], np.inf).astype(np.float64)


def _sd(cfg: StudyConfig) -> float:
    return math.sqrt((1 - cfg.tie_rate) * 0.25)


def _planned(cfg: StudyConfig) -> float:
    return fixed_horizon_n(_sd(cfg), cfg.mde, cfg.alpha, cfg.power)


def _times(rng: np.random.Generator, cfg: StudyConfig, effect: float, n: int) -> Floats:
    promoted, naive = [], []
    for start in range(0, cfg.runs, cfg.chunk):
        runs = min(cfg.chunk, cfg.runs - start)
        p, q = stopping_times(simulate_scores(rng, runs, n, effect, cfg.tie_rate), cfg)
        promoted.append(p)
        naive.append(q)
    return np.stack([np.concatenate(promoted), np.concatenate(naive)])


def run_study(cfg: StudyConfig) -> StudyResult:
    """Run the A/A, 2x MDE and MDE scenarios with one seeded generator."""
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    n_fixed = _planned(cfg)
    aa = _times(rng, cfg, 0.0, math.ceil(cfg.aa_horizon * n_fixed))
    false_promotions = int(np.isfinite(aa[0]).sum())
    upper = float(beta_dist.ppf(0.975, false_promotions + 1, cfg.runs - false_promotions))
    double = _times(rng, cfg, 2 * cfg.mde, math.ceil(3 * n_fixed))[0]
    at_mde = _times(rng, cfg, cfg.mde, math.ceil(1.7 * n_fixed))[0]
    return StudyResult(
        runs=cfg.runs,
        fixed_horizon_n=n_fixed,
        aa_false_promotion=false_promotions / cfg.runs,
        aa_false_promotion_upper95=upper,
        naive_false_promotion=float(np.isfinite(aa[1]).mean()),
        median_stop_ratio_2mde=float(np.median(double)) / n_fixed,
        power_at_1_7=float(np.isfinite(at_mde).mean()),
        seconds=time.perf_counter() - started,
    )
