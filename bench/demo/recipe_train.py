"""Train named LoRA variants of the demo's recipe over one loaded base (a recipe search aid).

    PYTHONPATH=. .venv/bin/python -m bench.demo.recipe_train --cache-dir DIR \
        NAME:steps=28,learning_rate=4e-3,general_share=0.25 ...

Each variant overrides fields of demo.train_lora.LoraConfig; prints a line per step and where
each adapter was saved (the demo's cache layout: DIR/adapters/smollm2-NAME-KEY).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time
from pathlib import Path


def _parse(spec: str) -> tuple[str, dict[str, object]]:
    name, _, rest = spec.partition(":")
    overrides: dict[str, object] = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        # LoraConfig's tunable fields are numbers: a float when it has a point or an exponent
        overrides[key] = float(value) if "." in value or "e" in value else int(value)
    return name, overrides


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from demo.train_lora import LoraConfig, train_lora

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    configs = {}
    for spec in args.variants:
        name, overrides = _parse(spec)
        configs[name] = dataclasses.replace(LoraConfig(), **overrides)  # type: ignore[arg-type]
        print(name, configs[name], flush=True)
    started = time.perf_counter()

    def step(name: str, s: int, n: int, loss: float) -> None:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        print(
            f"[{time.perf_counter() - started:7.1f}s cpu {cpu.ru_utime + cpu.ru_stime:7.1f}s]"
            f" {name}: step {s}/{n} loss {loss:.3f} load {os.getloadavg()[0]:.2f}",
            flush=True,
        )

    results = train_lora(configs, cache_dir=args.cache_dir, on_step=step, force=True)
    for name, result in results.items():
        print(f"{name}: {result.path} loss {result.final_loss} stages {result.stages}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
