"""Append the base model's own right answers to the demo's general set (demo/data/general.jsonl).

Asks SmolLM2-135M-Instruct (the demo's base checkpoint) every question of
``demo.rehearsal.rehearsal_candidates`` (none of them a probe) as the demo asks its control, scores
each answer with the judge's ``contains`` scorer against its key answer, and writes the
hand-written rows of the file (``general-NN``) followed by one ``rehearsal-NNN`` row per question
the base answers right in its answer's first line (at most 80 characters), that line verbatim:
the good candidate rehearses what the base already says. Rows from an earlier build are replaced.

    PYTHONPATH=. .venv/bin/python scripts/build_demo_general.py [--cache-dir DIR] [--out FILE]

CPU-bound: one decode per question (about 250, a minute or two). The adapters' recipe hash
covers this file: rebuild them afterwards (scripts/build_demo_adapters.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from demo.asking import ask
    from demo.cache import cache_root, offline_models

    offline_models()  # before any model library loads
    from demo.rehearsal import rehearsal_candidates
    from demo.train_lora import GENERAL_FILE, base_checkpoint, ensure_base
    from judge.scorers.contains import ContainsScorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="the demo's cache (base)")
    parser.add_argument("--out", type=Path, default=GENERAL_FILE, help="demo/data/general.jsonl")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in GENERAL_FILE.read_text().splitlines() if line]
    written = [row for row in rows if not str(row["id"]).startswith("rehearsal-")]
    base, _ = ensure_base(base_checkpoint(cache_root(args.cache_dir)))
    known = {row["prompt"] for row in written}
    candidates = [row for row in rehearsal_candidates() if row[1] not in known]
    answers = ask(base, [prompt for _, prompt, _ in candidates])
    scorer = ContainsScorer()
    kept: list[dict[str, object]] = []
    by_kind: dict[str, list[int]] = {}
    for (kind, prompt, reference), full in zip(candidates, answers, strict=True):
        answer = full.strip().split("\n", 1)[0].strip()  # its first line: no rambling after it
        right = len(answer) <= 80 and scorer.score_text(answer, reference) == 1.0
        by_kind.setdefault(kind, [0, 0])[int(not right)] += 1
        if right:
            row = {"id": f"rehearsal-{len(kept):03d}", "kind": kind, "prompt": prompt}
            kept.append({**row, "answer": answer})
    args.out.write_text("".join(json.dumps(r) + "\n" for r in written + kept))
    for kind, (n_right, n_wrong) in by_kind.items():
        print(f"{kind}: {n_right} right, {n_wrong} wrong", flush=True)
    print(f"{len(written)} written and {len(kept)} rehearsal rows in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
