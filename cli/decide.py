"""`tunegate decide`: turn an experiment's evidence into a Decision, once or in a loop.

Exit codes: 0 decided; 1 the decision is roll_back or pause (a failed gate), or Redis is
unreachable or the server at the URL is not Redis; 2 usage or config error (an unknown
experiment, a malformed Redis URL, a YAML file whose top level is not a mapping). Each is one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence

from cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_common,
    settings_from_args,
    setup_logging,
)
from tunegate.errors import TunegateError
from tunegate.experiments import ExperimentConfig

__all__ = ["observe_only", "register", "run"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("decide", help="decide the next step of an experiment")
    parser.add_argument("experiment", nargs="?", help="experiment name (omit with --all)")
    parser.add_argument("--all", action="store_true", help="every configured experiment")
    parser.add_argument(
        "--apply", action="store_true", help="apply stage changes even without policy.auto_apply"
    )
    parser.add_argument(
        "--observe-only",
        action="store_true",
        help="record and export decisions, never apply them (a rollout tool acts on them)",
    )
    parser.add_argument("--loop", action="store_true", help="keep deciding every --interval")
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between rounds (analysis.interval_seconds)",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve /metrics on this port"
    )
    add_common(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    settings = settings_from_args(args)
    setup_logging(settings.log_level)
    if args.all == bool(args.experiment):
        print("tunegate decide: give one EXPERIMENT or --all", file=sys.stderr)
        return EXIT_USAGE
    if args.observe_only and args.apply:
        print("tunegate decide: --observe-only and --apply exclude each other", file=sys.stderr)
        return EXIT_USAGE
    names = [e.name for e in settings.experiments] if args.all else [args.experiment]
    unknown = [n for n in names if settings.experiment(n) is None]
    if unknown:
        print(f"tunegate decide: unknown experiment {unknown[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_main(args, settings, names))
    except TunegateError as exc:
        print(f"tunegate decide: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RedisError as exc:  # the URL answers, but not as a Redis server would
        print(
            f"tunegate decide: the server at redis.url did not answer as Redis does: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED


async def _main(args: argparse.Namespace, settings: object, names: list[str]) -> int:
    from prometheus_client import CollectorRegistry, start_http_server
    from redis.exceptions import RedisError

    from analysis.controller import Controller
    from analysis.metrics import ControllerMetrics
    from analysis.verdict_metrics import VerdictMetrics
    from cli.settings import Settings
    from tunegate.records import Action
    from tunegate.redis import connect

    assert isinstance(settings, Settings)
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    verdicts = VerdictMetrics(registry)
    for name in names:
        metrics.touch(name)
        verdicts.touch(name)
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, registry=registry)
    interval = args.interval or settings.analysis.interval_seconds
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    failed = False
    async with connect(settings.redis) as client:
        experiments = (
            observe_only(settings.experiments) if args.observe_only else settings.experiments
        )
        controller = Controller(experiments, client, metrics, retention=settings.retention)
        while True:
            for name in names:
                try:
                    decision = await controller.step(name, apply=args.apply)
                except (TunegateError, RedisError) as exc:
                    if not args.loop:
                        raise
                    log.warning("decide %s failed: %s", name, exc)
                    continue
                verdicts.observe(decision)
                failed |= decision.action in (Action.ROLL_BACK, Action.PAUSE)
                if args.json:
                    print(json.dumps(decision.model_dump(mode="json")), flush=True)
                else:
                    _print(decision)
            if not args.loop:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                break
    return EXIT_FAILED if failed and not args.loop else EXIT_OK


def observe_only(experiments: Sequence[ExperimentConfig]) -> list[ExperimentConfig]:
    """The experiments with ``policy.auto_apply`` off: decisions are recorded, never applied."""
    return [
        e.model_copy(update={"policy": e.policy.model_copy(update={"auto_apply": False})})
        for e in experiments
    ]


def _print(decision: object) -> None:
    from rich.console import Console

    from analysis.report import evidence_table
    from tunegate.records import Decision

    assert isinstance(decision, Decision)
    state = (
        "applied"
        if decision.applied
        else (
            "waits for approval (tunegate state --approve)"
            if decision.needs_approval
            else "no change"
        )
    )
    console = Console()
    console.print(evidence_table(decision))
    console.print(
        f"{decision.experiment}: {decision.action.value} ({decision.stage_before.value}"
        f" {decision.weight_before:g} -> {decision.stage_after.value} {decision.weight_after:g},"
        f" {state})"
    )
