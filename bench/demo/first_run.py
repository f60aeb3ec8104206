"""Where `tunegate demo`'s time goes: a first run (fresh cache) and a cached run, wall and CPU.

One command, two runs of the real entry point in child processes, each with ``--json``: the
first with an empty cache directory (dequantize the GGUF base, keep its checkpoint, train both
adapters, run the offline gates and the live rounds), the second with the cache the first left
(both adapters and the offline answers reused). Prints each stage's wall-clock and CPU seconds
(every thread of the demo's process) and the cached/first ratio of the totals, as JSON too.

    .venv/bin/python -m bench.demo.first_run [--quick] [--out FILE] [-- extra demo flags]

On a shared machine the wall-clock figures stretch with the load; the CPU figures much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]


def _demo(cache: Path, workdir: Path, extra: list[str]) -> dict[str, object]:
    argv = [sys.executable, "-m", "cli", "demo", "--json"]
    print(f"running {' '.join(argv[2:])} ... (cache {cache})", flush=True)
    argv += ["--cache-dir", str(cache), "--workdir", str(workdir), *extra]
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    run = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"demo failed ({run.returncode}):\n{run.stderr[-4000:]}")
    result: dict[str, object] = json.loads(run.stdout)
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    # a shared machine stretches the wall-clock figures: say how busy it was
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def _table(name: str, result: dict[str, object]) -> None:
    wall = result["timings"]
    cpu = result.get("cpu_timings") or {}
    assert isinstance(wall, dict) and isinstance(cpu, dict)
    load = result["load_average"]
    print(f"{name}: process {result['process_seconds']} s wall (load average {load})")
    for stage, seconds in wall.items():
        print(f"  {stage:<20} wall {seconds:8.1f} s   cpu {cpu.get(stage, float('nan')):8.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="pass --quick to the demo")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument(
        "--first-only", action="store_true", help="measure the first run only (no cached run)"
    )
    parser.add_argument("extra", nargs="*", help="further demo flags (after --)")
    args = parser.parse_args(argv)
    extra = (["--quick"] if args.quick else []) + args.extra
    with tempfile.TemporaryDirectory(prefix="tg-demo-bench-") as tmp:
        cache, workdir = Path(tmp) / "cache", Path(tmp) / "work"
        first = _demo(cache, workdir, extra)
        _table("first run (fresh cache)", first)  # printed now: the cached run takes a while
        if args.out is not None:
            args.out.write_text(json.dumps({"first": first}, indent=2, default=str))
        if args.first_only:
            return 0
        cached = _demo(cache, workdir, extra)
    _table("cached run", cached)
    ratio = float(cached["process_seconds"]) / float(first["process_seconds"])  # type: ignore[arg-type]
    print(f"cached / first (process wall): {ratio:.2f}")
    if args.out is not None:
        keep = ("timings", "cpu_timings", "process_seconds", "load_average", "action")
        figures = {
            "first": {k: first.get(k) for k in keep},
            "cached": {k: cached.get(k) for k in keep},
            "ratio": round(ratio, 3),
            "candidates": first.get("candidates"),
        }
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
