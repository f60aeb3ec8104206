"""Monte Carlo of the latency p95 guardrail: order statistics against the state's histogram.

``python -m bench.scale.latency_audit --runs 1000`` simulates streams at the boundary of each
null (where an always-valid test is most often wrong) and counts the runs in which the test fired
at any look (every ``--every`` pairs up to ``--pairs``), for the array bound
(analysis/quantiles.py on the raw latencies) and the running state's histogram bound
(analysis/running.py). Both should stay at or below alpha; the histogram's can only be lower
(its bounds contain the order statistics' on every stream, tests/analysis checks it).

- breach: candidate p95 = control p95 x (1 + margin): a roll back here is a false alarm;
- holds: the same streams, where showing non-inferiority (p95 ratio <= 1 + margin) is wrong.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from analysis.quantiles import quantile_bounds, quantile_ranks
from analysis.running import LatencyHistogram


def _bounds_array(x: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, _, hi = quantile_bounds(x, 0.95, alpha)
    return lo, hi


def _bounds_histogram(h: LatencyHistogram, alpha: float) -> tuple[float, float]:
    lo_rank, hi_rank = quantile_ranks(h.n, 0.95, alpha)
    lo, _, hi = h.bounds(0.95, lo_rank, hi_rank)
    return lo, hi


def audit(
    runs: int, pairs: int, every: int, alpha: float, margin: float, seed: int
) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    limit = 1 + margin
    fired = {"array_breach": 0, "histogram_breach": 0, "array_holds": 0, "histogram_holds": 0}
    for _ in range(runs):
        ctrl = rng.gamma(4, 0.05, pairs)
        cand = rng.gamma(4, 0.05, pairs) * limit  # the p95 ratio is exactly 1 + margin
        hists = LatencyHistogram(), LatencyHistogram()
        hit = dict.fromkeys(fired, False)
        for end in range(every, pairs + 1, every):
            hists[0].add(ctrl[end - every : end])
            hists[1].add(cand[end - every : end])
            a = alpha / 2
            for kind, (c_lo, c_hi), (k_lo, k_hi) in (
                ("array", _bounds_array(ctrl[:end], a), _bounds_array(cand[:end], a)),
                ("histogram", _bounds_histogram(hists[0], a), _bounds_histogram(hists[1], a)),
            ):
                hit[f"{kind}_breach"] |= bool(k_lo > limit * c_hi)
                hit[f"{kind}_holds"] |= bool(k_hi <= limit * c_lo)
        for key, value in hit.items():
            fired[key] += int(value)
    rates = {key: value / runs for key, value in fired.items()}
    return {"runs": runs, "pairs": pairs, "every": every, "alpha": alpha, "margin": margin, **rates}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.scale.latency_audit")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20240611)
    a = parser.parse_args()
    print(json.dumps(audit(a.runs, a.pairs, a.every, a.alpha, a.margin, a.seed)))
