"""Write the demo's shipped probes (demo/data/probes.jsonl): every candidate, in order.

The file holds every probe ``demo.probes.generate_probes`` makes, the ones the base model answers
wrong too: a probe set filtered on the control's right answers can only show the candidate
losing, so it counts any change to the weights as a regression (regression to the mean). With
``--answers FILE`` it also asks SmolLM2-135M-Instruct (the demo's base checkpoint, dequantized
into the cache on first use) every probe through the proxy's in-process backend, as the demo
asks its control (the plain question, greedy, the demo's token limit), scores each answer with
the judge's ``contains`` scorer and writes them as JSONL, with the base's right and wrong
counts per kind: a look at what the base knows, which the probes do not depend on.

    PYTHONPATH=. .venv/bin/python scripts/build_demo_probes.py [--out FILE]
        [--answers FILE [--cache-dir DIR]]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from demo.probes import Probe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _answers(probes: list[Probe], cache_dir: Path | None, out: Path) -> None:
    from demo.asking import ask
    from demo.cache import cache_root, offline_models

    offline_models()  # before any model library loads
    from demo.train_lora import base_checkpoint, ensure_base
    from judge.scorers.contains import ContainsScorer

    base, _ = ensure_base(base_checkpoint(cache_root(cache_dir)))
    answers = ask(base, [p.prompt for p in probes])
    scorer = ContainsScorer()
    rows = [
        {**asdict(p), "answer": a, "right": scorer.score_text(a, p.reference) == 1.0}
        for p, a in zip(probes, answers, strict=True)
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_kind: dict[str, list[int]] = {}
    for row in rows:
        by_kind.setdefault(str(row["kind"]), [0, 0])[int(not row["right"])] += 1
    for kind, (n_right, n_wrong) in by_kind.items():
        print(f"{kind}: the base answers {n_right} right, {n_wrong} wrong", flush=True)


def main(argv: list[str] | None = None) -> int:
    from demo.probes import PROBES_FILE, generate_probes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=PROBES_FILE, help="demo/data/probes.jsonl")
    parser.add_argument("--answers", type=Path, default=None, help="the base's answers, as JSONL")
    parser.add_argument("--cache-dir", type=Path, default=None, help="the demo's cache (base)")
    args = parser.parse_args(argv)
    probes = generate_probes()
    args.out.write_text("".join(json.dumps(asdict(p)) + "\n" for p in probes))
    print(f"{len(probes)} probes in {args.out}", flush=True)
    if args.answers is not None:
        _answers(probes, args.cache_dir, args.answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
