"""Proxy benchmark: direct vs tunegate (passthrough, mirroring off, 100 % mirroring + pair log).

    python -m bench.proxy                 # defaults: 3 rounds x 5 s, c = 1, 32, 128, JSON + SSE
    python -m bench.proxy --rounds 1 --duration 2        # a short pilot
    python -m bench.proxy --litellm /tmp/litellm-venv/bin/litellm   # add LiteLLM (JSON, c=32)
    python -m bench.proxy --clients            # also: httpx vs aiohttp client throughput
    python -m bench.proxy --aiohttp --formats json   # also: off/on on the aiohttp client
    python -m bench.proxy --baseline-root ../landed  # the same targets from another checkout,
                                                     # in the same rounds (base-pass/off/on)

Against nginx returning a fixed completion (JSON or SSE), with wrk. Every round runs every
(format, concurrency, target) once, in rotating order, so drift on a shared machine hits all
alike; the table reports medians over rounds, ratios to direct and to tunegate with mirroring
off (of the medians, and "paired": the median over rounds of each round's own ratio, which a
neighbour's burst in one round moves less), and writes everything to
bench/results/proxy-<time>.json. With ``--baseline-root`` a last table sets each ratio of this
tree beside the baseline tree's, both measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from bench.proxy.clients import compare_clients
from bench.proxy.nginx import Nginx
from bench.proxy.processes import Targets
from bench.proxy.ttft import first_chunk_latency
from bench.proxy.wrk import WrkResult, run_wrk

BODY_JSON = json.dumps(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "Say something about foxes."}],
        "max_tokens": 32,
    }
)
BODY_SSE = json.dumps({**json.loads(BODY_JSON), "stream": True})

Key = tuple[str, int, str]  # format, concurrency, target


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proxy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--formats", default="json,sse")
    parser.add_argument("--litellm", default=None, metavar="PATH", help="litellm executable")
    parser.add_argument("--clients", action="store_true", help="compare httpx and aiohttp")
    parser.add_argument(
        "--aiohttp", action="store_true", help="add off/on targets on the aiohttp client"
    )
    parser.add_argument(
        "--baseline-root",
        type=Path,
        default=None,
        metavar="PATH",
        help="another checkout whose off/on/pass targets run in the same rounds (base-*)",
    )
    parser.add_argument("--ttft-samples", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    return parser.parse_args()


def _run_matrix(
    args: argparse.Namespace, targets: Targets, nginx: Nginx
) -> dict[Key, list[WrkResult]]:
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    formats = args.formats.split(",")
    results: dict[Key, list[WrkResult]] = defaultdict(list)
    names = targets.names
    for round_no in range(args.rounds):
        shift = round_no % len(names)
        order = names[shift:] + names[:shift]  # rotate: no target always runs first
        for fmt in formats:
            body = BODY_JSON if fmt == "json" else BODY_SSE
            for conc in concurrencies:
                for name in order:
                    url = targets.url(name, fmt, nginx)
                    if url is None or not targets.wants(name, fmt, conc):
                        continue
                    cpu_before = targets.cpu_seconds(name, fmt)
                    result = run_wrk(url, body, connections=conc, duration_s=args.duration)
                    cpu_after = targets.cpu_seconds(name, fmt)
                    if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
                        # requests per CPU-second of the proxy process: what one dedicated core
                        # would serve, much less sensitive to a busy machine than req/s
                        result = replace(
                            result, per_cpu_s=result.requests / (cpu_after - cpu_before)
                        )
                    results[fmt, conc, name].append(result)
                    print(
                        f"round {round_no + 1} {fmt:4} c={conc:<3} {name:15}"
                        f" {result.rps:9.0f} req/s  p50 {result.p50_ms:7.3f} ms"
                        f"  p99 {result.p99_ms:7.3f} ms  errors {result.errors + result.non2xx}"
                        + (f"  {result.per_cpu_s:7.0f} req/cpu-s" if result.per_cpu_s else ""),
                        flush=True,
                    )
    return results


def _fixed_load(
    args: argparse.Namespace, targets: Targets, nginx: Nginx, results: dict[Key, list[WrkResult]]
) -> dict[str, object]:
    """Latency at half of tunegate-off's JSON c=32 maximum, mirroring off vs on (interleaved).

    Each of 32 connections pauses after every response, so the offered rate is about
    32 / (pause + latency); what mirroring adds below saturation is what users feel.
    """
    runs = results.get(("json", 32, "tunegate-off"))
    if not runs:
        return {}
    rate = statistics.median(r.rps for r in runs) / 2
    pause_ms = 32 / rate * 1000
    out: dict[str, list[WrkResult]] = defaultdict(list)
    for _ in range(args.rounds):
        for name in ("tunegate-off", "tunegate-on"):
            url = targets.url(name, "json", nginx)
            assert url is not None
            out[name].append(
                run_wrk(url, BODY_JSON, connections=32, duration_s=args.duration, delay_ms=pause_ms)
            )
    summary: dict[str, object] = {"offered_rps": round(rate, 1), "pause_ms": round(pause_ms, 2)}
    for name, found in out.items():
        summary[name] = {
            "rps": round(statistics.median(r.rps for r in found), 1),
            "p50_ms": round(statistics.median(r.p50_ms for r in found), 3),
            "p99_ms": round(statistics.median(r.p99_ms for r in found), 3),
        }
    return summary


def _off_target(name: str) -> str:
    """The mirroring-off target a target's ratio is taken against (same client, same tree)."""
    if name.startswith("base-"):
        return "base-off"
    return "tunegate-off-aio" if name.endswith("-aio") else "tunegate-off"


def _paired(results: dict[Key, list[WrkResult]], key: Key, against: Key) -> float | None:
    """Median over rounds of the round's own throughput ratio (rounds ran both targets)."""
    ours, theirs = results.get(key, []), results.get(against, [])
    ratios = [a.rps / b.rps for a, b in zip(ours, theirs, strict=False) if b.rps]
    return round(statistics.median(ratios), 4) if ratios and len(ours) == len(theirs) else None


def _compare(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """This tree's mirrored ratios beside the baseline tree's (``--baseline-root``)."""
    found = {(r["format"], r["concurrency"], r["target"]): r for r in rows}
    out: list[dict[str, object]] = []
    for (fmt, conc, name), row in sorted(found.items(), key=str):
        theirs = found.get((fmt, conc, "base-on"))
        if name != "tunegate-on" or theirs is None:
            continue
        entry: dict[str, object] = {"format": fmt, "concurrency": conc}
        for key in ("rps_vs_direct_paired", "rps_vs_off_paired"):
            a, b = row[key], theirs[key]
            entry[key] = (a, b)
            entry[f"{key}_change"] = (
                round(a / b - 1, 4) if isinstance(a, float) and isinstance(b, float) else None
            )
        out.append(entry)
    return out


def _summary(results: dict[Key, list[WrkResult]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    med: dict[Key, tuple[float, float, float]] = {}
    per_cpu: dict[Key, float | None] = {}
    for key, runs in results.items():
        med[key] = (
            statistics.median(r.rps for r in runs),
            statistics.median(r.p50_ms for r in runs),
            statistics.median(r.p99_ms for r in runs),
        )
        cpu = [r.per_cpu_s for r in runs if r.per_cpu_s]
        per_cpu[key] = statistics.median(cpu) if cpu else None
    for (fmt, conc, name), (rps, p50, p99) in sorted(med.items()):
        direct = med.get((fmt, conc, "direct"))
        base = _off_target(name)
        off = med.get((fmt, conc, base))
        efficiency = per_cpu[fmt, conc, name]
        off_efficiency = per_cpu.get((fmt, conc, base))
        rows.append(
            {
                "format": fmt,
                "concurrency": conc,
                "target": name,
                "rounds": len(results[fmt, conc, name]),
                "rps": round(rps, 1),
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "rps_vs_direct": round(rps / direct[0], 4) if direct else None,
                "rps_vs_off": round(rps / off[0], 4) if off else None,
                "rps_vs_direct_paired": _paired(results, (fmt, conc, name), (fmt, conc, "direct")),
                "rps_vs_off_paired": _paired(results, (fmt, conc, name), (fmt, conc, base)),
                "p50_added_ms": round(p50 - direct[1], 3) if direct else None,
                "p99_added_ms": round(p99 - direct[2], 3) if direct else None,
                "req_per_cpu_s": round(efficiency, 1) if efficiency else None,
                "req_per_cpu_s_vs_off": round(efficiency / off_efficiency, 4)
                if efficiency and off_efficiency
                else None,
                "errors": sum(r.errors + r.non2xx for r in results[fmt, conc, name]),
            }
        )
    return rows


def _print_table(rows: list[dict[str, object]]) -> None:
    print(
        f"\n{'fmt':4} {'c':>3} {'target':15} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'x direct':>9} {'x off':>7} {'+p50 ms':>8} {'+p99 ms':>8} {'req/cpu-s':>9}"
        f" {'x off':>6}"
    )
    for row in rows:

        def f(key: str, spec: str, row: dict[str, object] = row) -> str:
            value = row[key]
            return format(value, spec) if isinstance(value, float | int) else "-"

        print(
            f"{row['format']!s:4} {row['concurrency']!s:>3} {row['target']!s:15} {f('rps', '9.0f')}"
            f" {f('p50_ms', '8.3f')} {f('p99_ms', '8.3f')} {f('rps_vs_direct', '9.3f')}"
            f" {f('rps_vs_off', '7.3f')} {f('p50_added_ms', '8.3f')} {f('p99_added_ms', '8.3f')}"
            f" {f('req_per_cpu_s', '9.0f')} {f('req_per_cpu_s_vs_off', '6.3f')}"
        )


def _print_compare(rows: list[dict[str, object]], baseline: Path) -> None:
    print(f"\nmirroring on, this tree vs {baseline} (paired ratios, same rounds)")
    print(f"{'fmt':4} {'c':>3} {'x direct: ours / base':>24} {'change':>8}"
          f" {'x off: ours / base':>21} {'change':>8}")  # fmt: skip
    for row in rows:
        cells = []
        for key in ("rps_vs_direct_paired", "rps_vs_off_paired"):
            pair = row[key]
            assert isinstance(pair, tuple)
            ours, theirs = pair
            change = row[f"{key}_change"]
            cells.append(
                f"{ours!s:>10} / {theirs!s:<10}"
                + (f" {change:+8.1%}" if isinstance(change, float) else "        -")
            )
        print(f"{row['format']!s:4} {row['concurrency']!s:>3} {cells[0]:>24} {cells[1]:>21}")


def main() -> None:
    args = _parse()
    report: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    baseline = args.baseline_root.resolve() if args.baseline_root else None
    targets = Targets(litellm=args.litellm, aiohttp=args.aiohttp, baseline=baseline)
    with targets, Nginx(targets.port(), targets.port()) as nginx:
        targets.start(nginx)
        if args.clients:
            report["clients"] = compare_clients(f"http://127.0.0.1:{nginx.json_port}", BODY_JSON)
            print("clients:", json.dumps(report["clients"]), flush=True)
        targets.warm_up(nginx, BODY_JSON, BODY_SSE)
        results = _run_matrix(args, targets, nginx)
        report["fixed_load"] = _fixed_load(args, targets, nginx, results)
        report["ttft"] = first_chunk_latency(targets, nginx, BODY_SSE, args.ttft_samples)
        report["pairs"] = targets.pair_counts()
    rows = _summary(results)
    report["rows"] = rows
    _print_table(rows)
    if baseline is not None:
        report["baseline_root"] = str(baseline)
        compared = _compare(rows)
        report["compare"] = compared
        _print_compare(compared, baseline)
    print("\nSSE time to first chunk (ms, sequential):", json.dumps(report["ttft"]))
    print(
        "fixed load (half of tunegate-off's JSON c=32 maximum):", json.dumps(report["fixed_load"])
    )
    print("pair log of tunegate-on:", json.dumps(report["pairs"]))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"proxy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
