"""A/A Monte Carlo of the offline gate: how often does an unchanged model fail (or falsely pass)?

Each run is one offline evaluation of a model against itself, decoded with sampling so the two
arms still disagree item by item. Items have a difficulty (probability of a correct answer,
Beta(2, 2)), and each arm answers each item independently at that probability. The task set
(``task_items`` over ``task_categories``) is scored by a binary metric (exact McNemar), a
continuous score (paired bootstrap) and the pairwise judge (permutation test, ties explicit),
each overall and per category; the probe suite (``probe_categories`` x ``probe_items``) by
non-inferiority on the relative scale at the acceptable drop. Holm runs as ``holm_gate`` does
(pass claims per family, regression claims of task and probes together), and each comparison is
read with analysis/offline/paired.py's ``verdict`` as the gate reads it.
The run **fails** when any comparison says fail; it **falsely passes** when a task metric
claims superiority. Both rates must stay at or below alpha. With ``lift`` (a better candidate on
the task) and ``probe_drop`` (a lost share of probe category p0) the same study measures power:
how often every overall task comparison passes (``task_shown``) and how often p0 is judged fail
(``p0_failed``); ``false_fail`` and ``false_pass`` then read as plain fail and pass rates.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta as beta_dist

from analysis.offline.paired import (
    OVERALL,
    Comparison,
    Resampler,
    bootstrap,
    holm_gate,
    mcnemar,
    preference,
    verdict,
)

__all__ = ["AAConfig", "AAResult", "run_aa"]


@dataclass(frozen=True)
class AAConfig:
    runs: int = 2000
    seed: int = 20261202
    alpha: float = 0.05
    task_items: int = 300
    task_categories: int = 3
    probe_categories: int = 5
    probe_items: int = 26
    acceptable_drop: float = 0.05
    fail_drop: float = 0.15
    resamples: int = 2000
    permutation_resamples: int = 1999
    tie_rate: float = 0.3
    lift: float = 0.0  # > 0: the candidate is better on the task by this much (a power study)
    probe_drop: float = 0.0  # > 0: the candidate loses this share of probe category p0


@dataclass(frozen=True)
class AAResult:
    runs: int
    false_fail: float
    false_fail_upper95: float  # exact Clopper-Pearson upper bound
    false_pass: float
    false_pass_upper95: float
    probe_inconclusive: float  # share of probe categories left unsettled
    task_shown: float  # runs where every overall task comparison passed (the gate's task claim)
    p0_failed: float  # runs where probe category p0 was judged fail
    seconds: float


def _upper95(hits: int, runs: int) -> float:
    return 1.0 if hits == runs else float(beta_dist.ppf(0.95, hits + 1, runs - hits))


def _task(rng: np.random.Generator, cfg: AAConfig, seed: int) -> list[Comparison]:
    n = cfg.task_items
    difficulty = rng.beta(2, 2, n)
    categories = np.arange(n) % cfg.task_categories
    better = np.clip(difficulty + cfg.lift, 0, 1)
    control = (rng.random(n) < difficulty).astype(float)
    candidate = (rng.random(n) < better).astype(float)
    score_c = np.clip(difficulty + rng.normal(0, 0.15, n), 0, 1)
    score_t = np.clip(better + rng.normal(0, 0.15, n), 0, 1)
    decisive = rng.random(n) >= cfg.tie_rate
    wins = rng.random(n) < 0.5 + cfg.lift / 2
    judge = np.where(decisive, np.where(wins, 1.0, -1.0), 0.0)
    out = []
    groups = [(OVERALL, np.ones(n, dtype=bool))]
    groups += [(f"c{c}", categories == c) for c in range(cfg.task_categories)]
    for name, rows in groups:
        sampler = Resampler(int(rows.sum()), resamples=cfg.resamples, seed=seed)
        out.append(mcnemar(control[rows], candidate[rows], metric="accuracy", category=name))
        out.append(
            bootstrap(
                score_c[rows], score_t[rows], metric="score", category=name, resampler=sampler
            )
        )
        out.append(
            preference(
                judge[rows],
                metric="judge",
                category=name,
                resamples=cfg.permutation_resamples,
                seed=seed,
                resampler=sampler,
            )
        )
    return out


def _probes(rng: np.random.Generator, cfg: AAConfig, seed: int) -> list[Comparison]:
    out = []
    for c in range(cfg.probe_categories):
        difficulty = rng.beta(2, 2, cfg.probe_items)
        kept = difficulty * (1 - cfg.probe_drop) if c == 0 else difficulty
        control = (rng.random(cfg.probe_items) < difficulty).astype(float)
        candidate = (rng.random(cfg.probe_items) < kept).astype(float)
        out.append(
            bootstrap(
                control,
                candidate,
                metric="probe",
                category=f"p{c}",
                kind="non_inferiority",
                margin=cfg.acceptable_drop,
                scale="relative",
                resampler=Resampler(cfg.probe_items, resamples=cfg.resamples, seed=seed),
            )
        )
    return out


def run_aa(cfg: AAConfig) -> AAResult:
    """The seeded study; the same config gives the same result."""
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    fails = passes = unsettled = shown = p0 = 0
    for run in range(cfg.runs):
        task, probes = holm_gate(_task(rng, cfg, run), _probes(rng, cfg, run))
        task_verdicts = [verdict(c, cfg.alpha) for c in task]
        probe_verdicts = [verdict(c, cfg.alpha, cfg.fail_drop) for c in probes]
        fails += "fail" in task_verdicts + probe_verdicts
        passes += "pass" in task_verdicts
        unsettled += sum(v == "inconclusive" for v in probe_verdicts)
        overall = [v for c, v in zip(task, task_verdicts, strict=True) if c.category == OVERALL]
        shown += all(v == "pass" for v in overall)
        p0 += probe_verdicts[0] == "fail"
    runs = cfg.runs
    return AAResult(
        runs=runs,
        false_fail=fails / runs,
        false_fail_upper95=_upper95(fails, runs),
        false_pass=passes / runs,
        false_pass_upper95=_upper95(passes, runs),
        probe_inconclusive=unsettled / (runs * cfg.probe_categories),
        task_shown=shown / runs,
        p0_failed=p0 / runs,
        seconds=math.floor((time.perf_counter() - start) * 100) / 100,
    )


def as_dict(result: AAResult) -> dict[str, object]:
    return asdict(result)
