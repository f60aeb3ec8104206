"""Build the demo's shipped probes (demo/data/probes.jsonl): the candidates the base answers right.

Asks SmolLM2-135M-Instruct (the demo's base checkpoint, dequantized into the cache on first use)
every candidate of ``demo.probes.generate_probes`` through the proxy's in-process backend, as the
demo's control is asked (the plain question, greedy, at most 48 tokens, batches of 8), scores each
answer with the judge's ``contains`` scorer, and writes the ones it gets right, in order. Also
writes every answer to ``--answers`` (JSONL) for a look at what the base said.

    PYTHONPATH=. .venv/bin/python scripts/build_demo_probes.py [--cache-dir DIR] [--out FILE]
        [--answers FILE]

CPU-bound: one decode per candidate (about 130).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from demo.asking import ask
    from demo.cache import cache_root, offline_models

    offline_models()  # before any model library loads
    from demo.probes import PROBES_FILE, Probe, generate_probes
    from demo.train_lora import base_checkpoint, ensure_base
    from judge.scorers.contains import ContainsScorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="the demo's cache (base)")
    parser.add_argument("--out", type=Path, default=PROBES_FILE, help="demo/data/probes.jsonl")
    parser.add_argument("--answers", type=Path, default=None, help="every answer, as JSONL")
    args = parser.parse_args(argv)
    base, _ = ensure_base(base_checkpoint(cache_root(args.cache_dir)))
    candidates = generate_probes()
    answers = ask(base, [p.prompt for p in candidates])
    scorer = ContainsScorer()
    kept: list[Probe] = []
    rows: list[dict[str, object]] = []
    for probe, answer in zip(candidates, answers, strict=True):
        right = scorer.score_text(answer, probe.reference) == 1.0
        rows.append({**asdict(probe), "answer": answer, "right": right})
        if right:
            kept.append(Probe(f"probe-{len(kept):03d}", probe.kind, probe.prompt, probe.reference))
    args.out.write_text("".join(json.dumps(asdict(p)) + "\n" for p in kept))
    if args.answers is not None:
        args.answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_kind: dict[str, list[int]] = {}
    for row in rows:
        by_kind.setdefault(str(row["kind"]), [0, 0])[int(not row["right"])] += 1
    for kind, (n_right, n_wrong) in by_kind.items():
        print(f"{kind}: {n_right} right, {n_wrong} wrong", flush=True)
    print(f"{len(kept)} of {len(candidates)} probes kept in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
