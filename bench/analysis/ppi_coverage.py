"""Monte Carlo: the judge-corrected win rate keeps its coverage where the raw judge's misses.

    python -m bench.analysis.ppi_coverage [--runs 2000] [--pairs 2000] [--labels 200] [--seed 7]

Each run simulates ``pairs`` judged pairs whose true (human) win rate is ``truth``: the candidate
is better in ``truth - ties/2`` of them, tied in ``ties``, worse in the rest, and its answer is
the longer one in ``longer`` of them, independently of which is better. The judge prefers longer
answers: in a ``length_bias`` share of pairs it picks the longer one whatever the quality, else
it picks the human's side with probability ``accuracy`` (a tie it calls a tie). A random sample
of ``labels`` pairs gets the human label. Per run, both intervals at ``1 - alpha``:

- naive: the judge's mean over every pair with its normal interval, as if the judge were right;
- corrected: analysis.ppi.corrected_win_rate (PPI++) on the labelled sample and the rest.

It prints each interval's coverage of the truth (with its Monte Carlo standard error), median
width and mean estimate. tests/analysis/test_ppi.py runs a reduced cell of the same function.

Repeated looks (``--looks``, what a controller does): the pairs arrive in order, each one
labelled with chance ``labels / pairs``, and the corrected estimate is read after every
``--every`` labels (from the first ``--every`` on) on the pairs so far. A run covers when the
interval holds the truth at every look (time-uniform coverage). The fixed-sample interval's
falls below the nominal level as the looks add up; the always-valid one (``cs_lower`` /
``cs_upper``, analysis/ppi.py) stays at or above it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from analysis.ppi import corrected_win_rate, judge_only_interval

__all__ = ["Coverage", "LookCoverage", "Scenario", "repeated_looks", "simulate"]


@dataclass(frozen=True)
class Scenario:
    truth: float = 0.5
    ties: float = 0.1
    longer: float = 0.7  # share of pairs where the candidate's answer is the longer one
    length_bias: float = 0.3  # share of pairs the judge decides by length alone
    accuracy: float = 0.85  # otherwise: chance the judge picks the human's side
    pairs: int = 2000
    labels: int = 200
    alpha: float = 0.05


@dataclass(frozen=True)
class Coverage:
    runs: int
    naive_coverage: float
    corrected_coverage: float
    naive_width: float  # medians
    corrected_width: float
    naive_mean: float
    corrected_mean: float

    def standard_error(self, coverage: float) -> float:
        return math.sqrt(max(coverage * (1 - coverage), 1e-12) / self.runs)


def _one(s: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Human and judge scores (1 candidate, 0.5 tie, 0 control) of one run's pairs."""
    u = rng.random(s.pairs)
    wins = s.truth - s.ties / 2
    human = np.where(u < wins, 1.0, np.where(u < wins + s.ties, 0.5, 0.0))
    longer = np.where(rng.random(s.pairs) < s.longer, 1.0, 0.0)
    right = rng.random(s.pairs) < s.accuracy
    judged = np.where(right, human, 1.0 - human)  # a wrong call on a tie is still a tie
    judge = np.where(rng.random(s.pairs) < s.length_bias, longer, judged)
    return human, judge


def simulate(s: Scenario, runs: int, seed: int) -> Coverage:
    """Coverage of both intervals over ``runs`` simulated experiments (fixed ``seed``)."""
    rng = np.random.default_rng(seed)
    naive_hit = corrected_hit = 0
    widths: tuple[list[float], list[float]] = ([], [])
    means: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        human, judge = _one(s, rng)
        labelled = np.zeros(s.pairs, dtype=bool)
        labelled[rng.choice(s.pairs, size=s.labels, replace=False)] = True
        mean, low, high = judge_only_interval(judge, s.alpha)
        est = corrected_win_rate(human[labelled], judge[labelled], judge[~labelled], s.alpha)
        naive_hit += low <= s.truth <= high
        corrected_hit += est.lower <= s.truth <= est.upper
        widths[0].append(high - low)
        widths[1].append(est.upper - est.lower)
        means[0].append(mean)
        means[1].append(est.estimate)
    return Coverage(
        runs=runs,
        naive_coverage=naive_hit / runs,
        corrected_coverage=corrected_hit / runs,
        naive_width=float(np.median(widths[0])),
        corrected_width=float(np.median(widths[1])),
        naive_mean=float(np.mean(means[0])),
        corrected_mean=float(np.mean(means[1])),
    )


@dataclass(frozen=True)
class LookCoverage:
    runs: int
    looks: float  # mean looks per run
    fixed_coverage: float  # runs whose fixed-sample interval held the truth at every look
    always_valid_coverage: float  # the same for the always-valid interval

    def standard_error(self, coverage: float) -> float:
        return math.sqrt(max(coverage * (1 - coverage), 1e-12) / self.runs)


def repeated_looks(s: Scenario, runs: int, seed: int, every: int = 10) -> LookCoverage:
    """Time-uniform coverage of both corrected intervals, looking after every ``every`` labels."""
    rng = np.random.default_rng(seed)
    fixed_hit = valid_hit = looks = 0
    for _ in range(runs):
        human, judge = _one(s, rng)
        labelled = rng.random(s.pairs) < s.labels / s.pairs
        order = np.flatnonzero(labelled)
        fixed_ok = valid_ok = True
        for k in range(every, order.size + 1, every):
            seen = order[k - 1] + 1  # the pairs up to the k-th label
            mask = labelled[:seen]
            est = corrected_win_rate(
                human[:seen][mask], judge[:seen][mask], judge[:seen][~mask], s.alpha,
                planned_labels=s.labels / 2, planned_pairs=s.pairs / 2,
            )  # fmt: skip
            looks += 1
            fixed_ok &= est.lower <= s.truth <= est.upper
            valid_ok &= est.cs_lower <= s.truth <= est.cs_upper
        fixed_hit += fixed_ok
        valid_hit += valid_ok
    return LookCoverage(runs, looks / runs, fixed_hit / runs, valid_hit / runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--looks", action="store_true", help="the repeated-look check instead")
    parser.add_argument("--every", type=int, default=10, help="labels between looks")
    args = parser.parse_args()
    scenario = Scenario(pairs=args.pairs, labels=args.labels)
    if args.looks:
        looked = repeated_looks(scenario, args.runs, args.seed, args.every)
        print(f"{scenario}")
        print(f"runs {looked.runs}, {looked.looks:.1f} looks each (every {args.every} labels),"
              f" nominal coverage {1 - scenario.alpha:.0%} at every look")  # fmt: skip
        for name, cov in (
            ("fixed-sample", looked.fixed_coverage),
            ("always-valid", looked.always_valid_coverage),
        ):
            se = looked.standard_error(cov)
            print(f"{name:18} time-uniform coverage {cov:.3f} +- {se:.3f}")
        return
    result = simulate(scenario, args.runs, args.seed)
    print(f"{scenario}")
    print(f"runs {result.runs}, nominal coverage {1 - scenario.alpha:.0%}, truth {scenario.truth}")
    for name, cov, width, mean in (
        ("naive judge", result.naive_coverage, result.naive_width, result.naive_mean),
        ("corrected (PPI++)", result.corrected_coverage, result.corrected_width,
         result.corrected_mean),
    ):  # fmt: skip
        se = result.standard_error(cov)
        print(f"{name:18} coverage {cov:.3f} +- {se:.3f}  median width {width:.3f}"
              f"  mean estimate {mean:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
