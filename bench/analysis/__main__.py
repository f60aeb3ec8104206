"""`python -m bench.analysis`: the decision Monte Carlo and the cost of one look, as a table.

Every cell drives the production decide() on seeded simulated streams (bench/analysis/
decisions.py) and prints its figure beside its target, the exact 95 % upper bound where the
target is a bound, and the naive rule's figure on the same streams. Then one decide() on 1,000
pairs in three categories is timed, and the numpy Holm against statsmodels' multipletests on a
heap the size of a long-running controller's. ``--runs`` sets the streams per cell (10,000 by
default; ``--heavy-runs`` for the cells that call decide() at most looks), ``--audit`` and
``--check`` the streams per cell driven at every look and whose Evidence is checked against the
record builder (either kind of mismatch exits 1), ``--workers`` the processes.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from bench.analysis.decisions import run_cell
from bench.analysis.grid import figures, grid


def _time_decide(repeats: int = 200) -> dict[str, float]:
    from analysis.decide import decide
    from analysis.evidence import build_evidence
    from analysis.multiple import adjust
    from bench.analysis.factories import NOW, experiment, pairs_and_verdicts

    rng = np.random.default_rng(1)
    pairs, verdicts = [], []
    for name, n in (("a", 500), ("b", 300), ("c", 200)):
        p, v = pairs_and_verdicts(rng, n, name, 0.6, 0.55, prefix=name)
        pairs += p
        verdicts += v
    evidence = build_evidence("exp", pairs, verdicts, [])
    config = experiment()
    decide(config, None, evidence, NOW)
    took = []
    for _ in range(repeats):
        start = time.perf_counter()
        decide(config, None, evidence, NOW)
        took.append(time.perf_counter() - start)
    from statsmodels.stats.multitest import multipletests

    heap = [{"k": i, "v": [i]} for i in range(300_000)]  # a long-running controller's objects
    p_values = list(rng.random(5))
    ours, theirs = [], []
    for _ in range(50):
        start = time.perf_counter()
        adjust(p_values, 0.05, "holm")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        multipletests(p_values, alpha=0.05, method="holm")
        theirs.append(time.perf_counter() - start)
    del heap
    gc.collect()
    return {
        "decide_ms_median": 1e3 * float(np.median(took)),
        "holm_numpy_ms": 1e3 * float(np.median(ours)),
        "holm_statsmodels_ms": 1e3 * float(np.median(theirs)),
        "statsmodels_over_numpy": float(np.median(theirs) / np.median(ours)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--heavy-runs", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=20, help="streams per cell run at every look")
    parser.add_argument(
        "--check", type=int, default=200, help="streams per cell whose Evidence is checked"
    )
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated cell name prefixes")
    parser.add_argument("--json", action="store_true", help="one JSON line per figure")
    args = parser.parse_args()
    cells = grid(args.runs, args.seed, args.audit, args.heavy_runs, args.check)
    if args.only:
        prefixes = tuple(args.only.split(","))
        cells = [c for c in cells if c.scenario.name.startswith(prefixes)]
    print(f"{'cell':<22} {'figure':<26} {'target':<12} {'value':>8} {'upper95':>8} {'naive':>8}")
    started = time.perf_counter()
    failed = 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for result in pool.map(run_cell, cells):
            failed += result.audit_mismatches + result.evidence_mismatches
            for fig in figures(result):
                if args.json:
                    print(json.dumps(fig.__dict__), flush=True)
                else:
                    print(fig.row(), flush=True)
            audited = min(result.cell.audit, result.cell.runs)
            print(
                f"{'':<22} runs {result.cell.runs}, decide() calls {result.decide_calls},"
                f" audit mismatches {result.audit_mismatches}/{audited}, Evidence checked at"
                f" {result.checked_looks} looks, mismatches {result.evidence_mismatches},"
                f" {result.seconds:.0f} s",
                flush=True,
            )
    print(f"monte carlo: {time.perf_counter() - started:.0f} s")
    print(json.dumps(_time_decide()))
    if failed:
        raise SystemExit(
            f"{failed} audit or Evidence mismatches: the screen or evidence_at is wrong"
        )


if __name__ == "__main__":
    main()
