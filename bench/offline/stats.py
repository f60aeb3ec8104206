"""`python -m bench.offline.stats`: the offline gate's statistics at 10,000 items x 20 metrics.

The workload is one gate's worth of comparisons: 20 metrics (8 binary by exact McNemar,
6 continuous and 2 corpus ratio-of-sums metrics by paired bootstrap sharing one resampler per
item set, 4 pairwise-judge metrics by sign-flip permutation), each over all items and in each of
5 categories (120 comparisons), then Holm as the gate applies it, the MDE and the items each
unsettled comparison needs. The target: under 10 s on 2 cores. The baseline, measured in the
same run, is the plain-library route for one metric of each kind (scipy's paired
``bootstrap`` and ``permutation_test``, statsmodels' McNemar and ``multipletests``),
extrapolated to the same workload. Then the A/A Monte Carlo (bench/offline/aa.py) in full, and
the same study with a better candidate (+0.1 on the task) that lost half of one probe category.
Figures on a shared machine are noisy: medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from analysis.offline.paired import (
    OVERALL,
    Comparison,
    Resampler,
    bootstrap,
    holm_gate,
    items_needed,
    mcnemar,
    minimum_detectable_effect,
    preference,
    verdict,
)
from bench.offline.aa import AAConfig, run_aa

BINARY, CONTINUOUS, CORPUS, JUDGE = 8, 6, 2, 4
CATEGORIES = 5


Pairs = list[tuple[NDArray[Any], NDArray[Any]]]


@dataclass(frozen=True)
class Workload:
    """Per-item values of both arms for every metric, and the items' categories."""

    binary: Pairs
    continuous: Pairs
    corpus: Pairs
    judge: list[NDArray[np.float64]]
    categories: NDArray[np.int64]


def _data(n: int, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(2, 2, n)
    lift = 0.02
    binary = [
        ((rng.random(n) < difficulty), (rng.random(n) < np.clip(difficulty + lift, 0, 1)))
        for _ in range(BINARY)
    ]
    continuous = [
        (
            np.clip(difficulty + rng.normal(0, 0.2, n), 0, 1),
            np.clip(difficulty + lift + rng.normal(0, 0.2, n), 0, 1),
        )
        for _ in range(CONTINUOUS)
    ]
    corpus = []
    for _ in range(CORPUS):
        totals = rng.integers(5, 40, n).astype(float)
        corpus.append(
            (
                np.column_stack([rng.binomial(totals.astype(int), 0.5), totals]),
                np.column_stack([rng.binomial(totals.astype(int), 0.52), totals]),
            )
        )
    judge = [
        np.where(rng.random(n) < 0.3, 0.0, np.where(rng.random(n) < 0.52, 1.0, -1.0))
        for _ in range(JUDGE)
    ]
    return Workload(binary, continuous, corpus, judge, np.arange(n) % CATEGORIES)


def _ratio(means: np.ndarray) -> np.ndarray:
    return np.asarray(means[..., 0] / means[..., 1])


def gate_statistics(data: Workload, resamples: int, seed: int) -> list[Comparison]:
    """All 120 comparisons, Holm, verdicts and items needed: what one gate run computes."""
    categories = data.categories
    groups = [(OVERALL, np.ones(categories.size, dtype=bool))]
    groups += [(f"c{c}", categories == c) for c in range(CATEGORIES)]
    out: list[Comparison] = []
    for name, rows in groups:
        sampler = Resampler(int(rows.sum()), resamples=resamples, seed=seed)
        for i, (a, b) in enumerate(data.binary):
            out.append(mcnemar(a[rows], b[rows], metric=f"binary{i}", category=name))
        for i, (a, b) in enumerate(data.continuous):
            out.append(
                bootstrap(a[rows], b[rows], metric=f"score{i}", category=name, resampler=sampler)
            )
        for i, (a, b) in enumerate(data.corpus):
            out.append(
                bootstrap(
                    a[rows],
                    b[rows],
                    metric=f"corpus{i}",
                    category=name,
                    statistic=_ratio,
                    resampler=sampler,
                )
            )
        for i, o in enumerate(data.judge):
            out.append(
                preference(
                    o[rows],
                    metric=f"judge{i}",
                    category=name,
                    resamples=resamples,
                    seed=seed,
                    resampler=sampler,
                )
            )
    task, _ = holm_gate(out, [])
    minimum_detectable_effect(categories.size, tests=len(task))
    for c in task:
        if verdict(c) == "inconclusive":
            items_needed(c, tests=len(task))
    return task


def baseline_statistics(data: Workload, resamples: int, seed: int) -> float:
    """Seconds of the plain-library route for one metric of each kind over all items,
    extrapolated to the same 120 comparisons (each kind weighted by its count)."""
    rng = np.random.default_rng(seed)
    a, b = data.binary[0]
    x, y = data.continuous[0]
    judge = data.judge[0]

    def timed(step: Callable[[], object]) -> float:
        start = time.perf_counter()
        step()
        return time.perf_counter() - start

    def mean_diff(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.mean(q, axis=axis) - np.mean(p, axis=axis))

    t_binary = timed(
        lambda: sm_mcnemar(
            [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]], exact=True
        )
    )
    t_boot = timed(
        lambda: stats.bootstrap(
            (x, y),
            mean_diff,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            method="percentile",
            rng=rng,
        )
    )
    t_perm = timed(
        lambda: [
            stats.permutation_test(
                (judge,),
                lambda d, axis=-1: np.mean(d, axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=resamples,
                alternative=alt,
                rng=rng,
            )
            for alt in ("greater", "less")
        ]
    )
    t_holm = timed(lambda: [multipletests(rng.random(120), method="holm") for _ in range(2)])
    # a category holds 1/CATEGORIES of the items; resampling costs scale with the items
    scale = 2.0  # all items once + the categories' items once
    per_set = BINARY * t_binary + (CONTINUOUS + CORPUS) * t_boot + JUDGE * t_perm
    return per_set * scale + t_holm


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.offline.stats")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--aa-runs", type=int, default=2000, help="0 skips the A/A study")
    args = parser.parse_args()
    data = _data(args.items, args.seed)
    ours, cpu = [], []
    for repeat in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        comparisons = gate_statistics(data, args.resamples, args.seed + repeat)
        ours.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    baseline = [baseline_statistics(data, args.resamples, args.seed) for _ in range(args.repeats)]
    median, base = statistics.median(ours), statistics.median(baseline)
    print(
        json.dumps(
            {
                "bench": "offline.stats",
                "items": args.items,
                "metrics": BINARY + CONTINUOUS + CORPUS + JUDGE,
                "comparisons": len(comparisons),
                "resamples": args.resamples,
                "median_seconds": round(median, 3),
                "runs_seconds": [round(t, 3) for t in ours],
                "median_cpu_seconds": round(statistics.median(cpu), 3),
                "target_seconds": 10.0,
                "within_target": median < 10.0,
                "baseline_libraries_seconds": round(base, 3),
                "speedup_vs_baseline": round(base / median, 2),
            }
        ),
        flush=True,
    )
    if args.aa_runs:
        config = AAConfig(runs=args.aa_runs, seed=args.seed)
        result = run_aa(config)
        print(json.dumps({"bench": "offline.aa", **asdict(config), **asdict(result)}), flush=True)
        runs = max(100, args.aa_runs // 5)
        config = AAConfig(runs=runs, seed=args.seed, lift=0.1, probe_drop=0.5)
        result = run_aa(config)
        print(
            json.dumps({"bench": "offline.power", **asdict(config), **asdict(result)}), flush=True
        )


if __name__ == "__main__":
    main()
