"""`tunegate judge`: run judge workers, check their heartbeat, or calibrate a judge.

tunegate judge [--burst] [--workers N] [--metrics-port PORT]   consume pairs (burst: drain, exit)
tunegate judge --check [--name NAME]                              exit 0 when a heartbeat is fresh
tunegate judge calibrate --data PATH... | --labels EXPERIMENT [--judge longer|http|local] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    settings_from_args,
    setup_logging,
)
from cli.settings import Settings
from tunegate.errors import ConfigError, StoreUnavailable

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "judge", help="run judge workers that turn logged pairs into verdicts"
    )
    add_common(parser)
    parser.add_argument("--burst", action="store_true", help="drain pending pairs, then exit")
    parser.add_argument(
        "--check", action="store_true", help="exit 0 if a worker heartbeat is fresh"
    )
    parser.add_argument("--name", default=None, help="worker name (default: host-pid-random)")
    parser.add_argument("--workers", type=int, default=1, help="workers in this process")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="pairs judged at once per worker"
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="serve /metrics here")
    parser.set_defaults(func=run, judge_command=None)
    sub = parser.add_subparsers(dest="judge_command", metavar="SUBCOMMAND")
    calibrate = sub.add_parser("calibrate", help="measure a judge against labelled pairs")
    add_common(calibrate)
    source = calibrate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, nargs="+",
                        help="judge-golden JSON files or folders")  # fmt: skip
    source.add_argument("--labels", metavar="EXPERIMENT",
                        help="the console's human labels of EXPERIMENT (Redis)")  # fmt: skip
    calibrate.add_argument(
        "--judge",
        choices=("longer", "http", "local"),
        default="http",
        help="longer: pick-the-longer baseline; http, local: the judge.endpoint",
    )
    calibrate.add_argument("--limit", type=int, default=None, help="first N pairs only")
    calibrate.add_argument("--concurrency", type=int, default=8)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.judge_command is None and args.concurrency is not None:
        overrides["judge"] = {"concurrency": args.concurrency}
    settings = settings_from_args(args, **overrides)
    setup_logging(settings.log_level)
    try:
        if args.judge_command == "calibrate":
            return asyncio.run(_calibrate(settings, args))
        if args.check:
            return asyncio.run(_check(settings, args.name))
        return asyncio.run(_serve(settings, args))
    except ConfigError as exc:
        print(f"tunegate: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"tunegate judge: {exc}", file=sys.stderr)
        return EXIT_FAILED


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from judge.metrics import JudgeMetrics
    from judge.worker import JudgeWorker
    from tunegate.redis import connect

    registry = CollectorRegistry()
    metrics = JudgeMetrics(registry, [e.name for e in settings.experiments])
    server = None
    if args.metrics_port is not None:
        server, _ = start_http_server(args.metrics_port, registry=registry)
    try:
        async with connect(settings.redis) as redis:
            count = max(1, args.workers)
            names = [
                f"{args.name}-{i}" if args.name and count > 1 else args.name for i in range(count)
            ]
            workers = [
                JudgeWorker(
                    settings.judge,
                    settings.experiments,
                    redis,
                    metrics=metrics,
                    name=n,
                    retention=settings.retention,
                )
                for n in names
            ]
            for worker in workers:
                await worker.__aenter__()
            try:
                main = asyncio.current_task()
                signals = 0

                def on_signal() -> None:
                    nonlocal signals
                    signals += 1
                    for worker in workers:
                        worker.stop()  # first signal: finish the current batch
                    if signals > 1 and main is not None:
                        main.cancel()  # second signal: exit at once; others reclaim

                loop = asyncio.get_running_loop()
                if threading.current_thread() is threading.main_thread():  # else: embedded use
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        loop.add_signal_handler(sig, on_signal)
                stats = await asyncio.gather(*(w.run(until_idle=args.burst) for w in workers))
            finally:
                for worker in workers:
                    await worker.aclose()
    finally:
        if server is not None:
            server.shutdown()
    if args.json:
        from dataclasses import asdict

        import orjson

        print(orjson.dumps([asdict(s) for s in stats]).decode())
    return EXIT_OK


async def _check(settings: Settings, name: str | None) -> int:
    from tunegate import keys
    from tunegate.redis import connect, store_errors

    async with connect(settings.redis) as redis:
        with store_errors("heartbeat check"):
            if name is not None:
                found = [keys.heartbeat(name)]
            else:
                found = [k.decode() async for k in redis.scan_iter(keys.heartbeat("*"))]
            for key in found:
                beat = await redis.hget(key, "time")
                if (
                    beat is not None
                    and time.time() - float(beat) < 3 * settings.judge.heartbeat_seconds
                ):
                    print(f"ok: {key.rsplit(':', 1)[-1]} alive")
                    return EXIT_OK
    print("no fresh judge worker heartbeat", file=sys.stderr)
    return EXIT_FAILED


async def _from_labels(settings: Settings, experiment: str) -> tuple[list[Any], dict[str, int]]:
    """The console's labels of ``experiment`` as calibration pairs, and what was skipped."""
    from judge.labels import labelled_pairs
    from tunegate.redis import connect

    if experiment not in {e.name for e in settings.experiments}:
        raise ConfigError(f"--labels: no experiment named {experiment!r} is configured")
    async with connect(settings.redis) as redis:
        found = await labelled_pairs(redis, experiment)
    skipped = {"tie_labels": found.ties, "unusable_labels": found.unusable,
               "unreadable_labels": found.unreadable}  # fmt: skip
    return found.pairs, skipped


async def _calibrate(settings: Settings, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from judge.calibrate import LongerJudge, calibrate, load_golden
    from judge.pairwise import PairJudge, PairwiseJudge

    skipped: dict[str, int] = {}
    if args.labels is not None:
        pairs, skipped = await _from_labels(settings, args.labels)
    else:
        pairs = load_golden(args.data)
    pairs = pairs[: args.limit]
    if not pairs:
        print("tunegate judge calibrate: no labelled pairs to judge", file=sys.stderr)
        return EXIT_USAGE
    client = None
    judge: PairJudge
    if args.judge == "longer":
        judge = LongerJudge()
    else:
        endpoint = settings.judge.endpoint
        if endpoint is None or (args.judge == "http") != (endpoint.base_url is not None):
            raise ConfigError(f"judge.endpoint: --judge {args.judge} needs a matching endpoint")
        from judge.clients.factory import open_client

        client = await open_client(endpoint)
        judge = PairwiseJudge(client, settings.judge)
    try:
        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("judging", total=len(pairs))
            report = await calibrate(judge, pairs, concurrency=args.concurrency,
                                     progress=lambda: progress.advance(task))  # fmt: skip
    finally:
        if client is not None:
            await client.aclose()
    body = {**report.to_dict(), **skipped}
    if args.json:
        import orjson

        print(orjson.dumps(body).decode())
        return EXIT_OK
    table = Table(title=f"calibration of {report.judge_model} on {report.n} pairs")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in body.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)
    return EXIT_OK
