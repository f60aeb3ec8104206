"""`python -m bench.analysis`: the full Monte-Carlo study of the judge gate, as JSON lines.

Scenarios vary the tie rate and the MDE; each reports the A/A false-promotion rate (with its
exact 95% upper bound) beside the naive repeated z-test, the median stopping sample at twice
the MDE and the power at 1.7x the fixed-horizon sample, both as ratios to that sample.
"""

from __future__ import annotations

import argparse
import json

from bench.analysis.study import StudyConfig, run_study

SCENARIOS = [
    {"tie_rate": 0.3, "mde": 0.05},
    {"tie_rate": 0.0, "mde": 0.05},
    {"tie_rate": 0.6, "mde": 0.03},
    {"tie_rate": 0.3, "mde": 0.1},
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analysis")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--aa-horizon", type=float, default=10.0, help="A/A length / fixed n")
    args = parser.parse_args()
    for i, scenario in enumerate(SCENARIOS):
        cfg = StudyConfig(
            runs=args.runs,
            seed=args.seed + i,
            aa_horizon=args.aa_horizon,
            chunk=500,
            tie_rate=scenario["tie_rate"],
            mde=scenario["mde"],
        )
        print(json.dumps({**scenario, **run_study(cfg).to_json()}), flush=True)


if __name__ == "__main__":
    main()
