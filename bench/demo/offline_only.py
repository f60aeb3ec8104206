"""Only the demo's offline gate (demo/offline.py, `tunegate eval`) on given adapters.

For checking a training recipe without the live stages: each NAME=ADAPTER_DIR is gated as the
demo gates it (the held-out tickets and the probes, the same control and scorers, an embedded
Redis for the record), sharing one answer cache so the control answers once.

    PYTHONPATH=. .venv/bin/python -m bench.demo.offline_only --base DIR [--tickets 24] \
        [--probes 18] [--workdir DIR] tickets=demo/adapters/tickets mixed=demo/adapters/mixed

``--base``: the dequantized base checkpoint (the demo's cache: base-*), or ``packaged:smollm2``.
Prints per candidate the outcome, the reasons and each set's control/candidate means.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from pathlib import Path


def _summary(report_json: str) -> list[str]:
    """The gate's markdown summary (written beside report.json), indented."""
    path = Path(report_json).parent / "summary.md"
    return [f"  {line}" for line in path.read_text().splitlines() if line.strip()]


async def _main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cli.settings import Settings
    from demo.generative import (
        BASE_UPSTREAM,
        CANDIDATES,
        MAX_TOKENS,
        Prepared,
        local_upstream,
        traffic_items,
    )
    from demo.offline import offline_gate
    from demo.stack import embedded_redis

    console = Console(stderr=True)
    items = traffic_items(args.tickets, args.probes)
    prepared = []
    for spec in args.adapters:
        name, _, path = spec.partition("=")
        experiment = CANDIDATES[name][0] if name in CANDIDATES else f"recipe-{name}"
        prepared.append(
            Prepared(
                experiment=f"{experiment}-{Path(path).name}",
                upstreams={
                    BASE_UPSTREAM: local_upstream(args.base, None, 256),
                    f"smollm2-{name}": local_upstream(args.base, path, 256),
                },
                items=items,
                candidate=path,
                reused=True,
                train_seconds=0.0,
                final_loss=None,
                max_tokens=MAX_TOKENS,
            )
        )
    async with embedded_redis(args.workdir / "redis") as redis:
        upstreams = {k: v for p in prepared for k, v in p.upstreams.items()}
        settings = Settings(redis=redis, upstreams=upstreams)
        for p in prepared:
            started = time.perf_counter()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            result = await offline_gate(
                p, settings, args.workdir / p.experiment, console, None, args.workdir / "cache"
            )
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
            print(
                f"== {p.experiment} ({p.candidate}): {result['outcome']} exit {result['exit_code']}"
                f" model_calls {result['model_calls']} wall {time.perf_counter() - started:.0f}s"
                f" cpu {cpu:.0f}s load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            for reason in result["reasons"]:  # type: ignore[attr-defined]
                print(f"  reason: {reason}", flush=True)
            for line in _summary(str(result["json"])):
                print(line, flush=True)
    return 0


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--tickets", type=int, default=24)
    parser.add_argument("--probes", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path(".tunegate/offline-only"))
    parser.add_argument("adapters", nargs="+")
    args = parser.parse_args()
    # PEFT resolves the adapter from the proxy's working directory: pass absolute paths
    args.adapters = [
        f"{name}={Path(path).resolve()}"
        for name, _, path in (spec.partition("=") for spec in args.adapters)
    ]
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
