"""Build the demo's shipped adapters (demo/adapters/) from the project's own data.

Trains both candidates with the demo's recipe (demo/generative.py ``candidate_configs``: fixed
seeds, the same data and hyperparameters as ``tunegate demo --train``) over one loaded copy of
SmolLM2-135M-Instruct, then copies each adapter's files to demo/adapters/<name>/ and writes
demo/adapters/manifest.json with their sha256 hashes and the recipe key the demo checks.

    PYTHONPATH=. .venv/bin/python scripts/build_demo_adapters.py [--cache-dir DIR] [--out DIR]
        [--reuse]

``--reuse`` takes an adapter that a ``tunegate demo --train`` run (or an earlier build) left in
the cache for this exact recipe instead of training it again: the cache is keyed by the same
recipe hash, so it is the same training.

CPU-bound: a few CPU-minutes per adapter. Prints a line per step with the elapsed time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from demo.cache import offline_models

    offline_models()
    from demo.generative import candidate_configs
    from demo.shipped import SHIPPED_DIR, write_shipped
    from demo.train_lora import train_lora

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="the demo's cache (base)")
    parser.add_argument("--out", type=Path, default=SHIPPED_DIR, help="default demo/adapters")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse this recipe's adapters from the cache"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def step(name: str, s: int, n: int, loss: float) -> None:
        elapsed = time.perf_counter() - started
        print(f"[{elapsed:7.1f}s] {name}: step {s}/{n} loss {loss:.3f}", flush=True)

    configs = candidate_configs()
    verb = "reusing or training" if args.reuse else "training"
    print(f"{verb} {', '.join(configs)} (the base loads first)", flush=True)
    results = train_lora(
        configs, cache_dir=args.cache_dir, on_step=step, force=not args.reuse, shipped=False
    )
    for name, result in results.items():
        if result.reused:
            print(f"{name}: reused from the cache: {result.path}", flush=True)
        entry = write_shipped(name, result.path, result.key, result.steps, args.out)
        size = (args.out / name / "adapter_model.safetensors").stat().st_size
        print(
            f"{name}: {args.out / name} ({size / 1e6:.2f} MB), final loss {entry['final_loss']},"
            f" stages {result.stages}",
            flush=True,
        )
    print(f"done in {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
