"""``python -m bench.backend``: tokens/s and requests/s, batched backend vs one-at-a-time generate.

For each concurrency level (1, 8, 32), a round sends ``--requests`` requests (greedy,
``--max-tokens`` each) through plain transformers ``generate`` one request at a time (the
baseline), then ``max(--requests, level)`` requests through the batched backend from that many
concurrent clients, so every level keeps all its clients busy. The baseline runs right before
each level so that both see the same machine load (on a shared machine the load swings). Rates
(tokens/s, requests/s) are compared, not totals. Rounds repeat; each figure is the median over the
rounds, and each ratio the median of the per-round ratios against the adjacent baseline."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from bench.backend.measure import RunResult


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backend", description=__doc__)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"]
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--requests", type=int, default=8, help="requests per run (at least the level)"
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _row(level: int, pairs: list[tuple[RunResult, RunResult]]) -> dict[str, float]:
    """Medians over rounds of one level's figures, and the median per-round ratio."""
    base, batched = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "concurrency": level,
        "batched_tokens_per_s": round(_median([r.tokens_per_s for r in batched]), 2),
        "batched_requests_per_s": round(_median([r.requests_per_s for r in batched]), 3),
        "batched_latency_p50_s": round(_median([r.latency_p50_s for r in batched]), 3),
        "baseline_tokens_per_s": round(_median([r.tokens_per_s for r in base]), 2),
        "baseline_requests_per_s": round(_median([r.requests_per_s for r in base]), 3),
        "baseline_latency_p50_s": round(_median([r.latency_p50_s for r in base]), 3),
        "tokens_per_s_ratio": round(
            _median([b.tokens_per_s / a.tokens_per_s for a, b in pairs]), 2
        ),
        "requests_per_s_ratio": round(
            _median([b.requests_per_s / a.requests_per_s for a, b in pairs]), 2
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.backend.measure import run_baseline, run_batched
    from proxy.config import LocalModelConfig
    from proxy.upstream.local.loading import load_causal_lm

    cfg = LocalModelConfig(
        path="packaged:smollm2",
        device=args.device,
        dtype=args.dtype,
        max_batch_size=args.max_batch_size,
        batch_window_ms=args.batch_window_ms,
        max_queue=max(args.concurrency) + 1,
    )
    began = time.perf_counter()
    lm = load_causal_lm(cfg)
    print(
        f"loaded SmolLM2-135M-Instruct on {lm.device} ({lm.dtype}) in {lm.load_seconds:.1f}s",
        file=sys.stderr,
    )
    run_baseline(lm, 1, args.max_tokens)  # warm-up
    runs: dict[int, list[tuple[RunResult, RunResult]]] = {c: [] for c in args.concurrency}
    for repeat in range(args.repeats):
        for level in args.concurrency:
            baseline = run_baseline(lm, args.requests, args.max_tokens)
            count = max(args.requests, level)
            batched = asyncio.run(run_batched(cfg, level, count, args.max_tokens))
            runs[level].append((baseline, batched))
            print(
                f"round {repeat + 1}/{args.repeats} c={level}: batched {batched.tokens_per_s:.1f}"
                f" tok/s, baseline {baseline.tokens_per_s:.1f} tok/s",
                file=sys.stderr,
            )
    rows = [_row(level, pairs) for level, pairs in runs.items()]
    report = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized)",
        "device": str(lm.device),
        "dtype": str(lm.dtype).removeprefix("torch."),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "requests": {str(c): max(args.requests, c) for c in args.concurrency},
        "baseline_requests": args.requests,
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "levels": rows,
        "total_s": round(time.perf_counter() - began, 1),
    }
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{report['model']} on {report['device']} ({report['dtype']}), {report['machine']}")
    print(
        f"max({args.requests}, concurrency) requests per level, max_tokens {args.max_tokens}, "
        f"greedy, median of {args.repeats} rounds; baseline = transformers generate, one at a time"
    )
    print(
        f"{'conc':>4} {'batched tok/s':>14} {'base tok/s':>11} {'ratio':>6} "
        f"{'batched req/s':>14} {'base req/s':>11} {'ratio':>6} {'p50 s batched/base':>19}"
    )
    for row in rows:
        print(
            f"{row['concurrency']:>4} {row['batched_tokens_per_s']:>14.1f} "
            f"{row['baseline_tokens_per_s']:>11.1f} {row['tokens_per_s_ratio']:>6.2f} "
            f"{row['batched_requests_per_s']:>14.2f} {row['baseline_requests_per_s']:>11.2f} "
            f"{row['requests_per_s_ratio']:>6.2f} "
            f"{row['batched_latency_p50_s']:>10.2f}/{row['baseline_latency_p50_s']:<9.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
