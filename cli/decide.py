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
    parser.add_argument(
        "--all",
        action="store_true",
        help="every experiment (the live definitions, unless proxy.experiments_from: file)",
    )
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
    live = settings.proxy.experiments_from == "redis"
    if not (args.all or live) and settings.experiment(args.experiment) is None:
        print(f"tunegate decide: unknown experiment {args.experiment!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_main(args, settings))
    except TunegateError as exc:
        print(f"tunegate decide: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RedisError as exc:  # the URL answers, but not as a Redis server would
        print(
            f"tunegate decide: the server at redis.url did not answer as Redis does: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED


async def _main(args: argparse.Namespace, settings: object) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from analysis.controller import Controller
    from analysis.folder import ContinuousFolder
    from analysis.metrics import ControllerMetrics
    from analysis.verdict_metrics import VerdictMetrics
    from cli.settings import Settings
    from tunegate.lease import Leadership
    from tunegate.redis import connect

    assert isinstance(settings, Settings)
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    verdicts = VerdictMetrics(registry)
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, registry=registry)
    interval = args.interval or settings.analysis.interval_seconds
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    failed = False
    async with connect(settings.redis) as client, contextlib.AsyncExitStack() as stack:
        controller = Controller([], client, metrics, retention=settings.retention)
        names = await _experiments(args, settings, controller)
        if not args.all and args.experiment not in names:  # only with definitions in redis
            print(f"tunegate decide: unknown experiment {args.experiment!r}", file=sys.stderr)
            return EXIT_USAGE
        touched: set[str] = set()
        # in a loop, several replicas may run: only the lease holder decides
        leader = (
            await stack.enter_async_context(
                Leadership(client, settings.analysis.lease_name, settings.analysis.lease_seconds)
            )
            if args.loop
            else None
        )
        fold_s = settings.analysis.fold_interval_seconds
        if leader is not None and fold_s > 0:  # the leader keeps the states folded between looks
            await stack.enter_async_context(
                ContinuousFolder(
                    client,
                    lambda: controller.experiments,
                    fold_s,
                    active=lambda: leader is not None and leader.token is not None,
                )
            )
        while True:
            for name in set(names) - touched:  # its series at their no-decision values, once
                verdicts.touch(name)
            touched.update(names)
            if leader is None or await _lead(leader, controller, names):
                failed |= await _round(args, controller, names, verdicts)
            if not args.loop:
                break
            # a follower looks again every third of the lease time, to take over soon after
            wait = interval if leader is None or leader.token else min(interval, leader.ttl_s / 3)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            if stop.is_set():
                break
            try:  # definitions created, edited or deleted since the last round
                names = await _experiments(args, settings, controller)
            except TunegateError as exc:
                log.warning("reading the experiment definitions failed: %s; keeping the last", exc)
    return EXIT_FAILED if failed and not args.loop else EXIT_OK


async def _round(
    args: argparse.Namespace, controller: object, names: list[str], verdicts: object
) -> bool:
    """Decide each experiment once and print it; whether a decision failed a gate."""
    from redis.exceptions import RedisError

    from analysis.controller import Controller
    from analysis.verdict_metrics import VerdictMetrics
    from tunegate.records import Action

    assert isinstance(controller, Controller) and isinstance(verdicts, VerdictMetrics)
    failed = False
    for name in names:
        try:
            decision = await controller.step(name, apply=args.apply)
        except (TunegateError, RedisError) as exc:
            if not args.loop:
                raise
            log.warning("decide %s failed: %s", name, exc)
            continue
        verdicts.observe(decision)
        if args.loop:
            await _fold_pair_index(controller, name)
        failed |= decision.action in (Action.ROLL_BACK, Action.PAUSE)
        if args.json:
            print(json.dumps(decision.model_dump(mode="json")), flush=True)
        else:
            _print(decision)
    return failed


#: Pair index folds per look (each up to 1,000 entries per stream): 20,000 pairs a look keeps up
#: with far more traffic than one proxy serves at the loop's interval; more waits for the next.
INDEX_PAGES_PER_LOOK = 20


async def _fold_pair_index(controller: object, name: str) -> None:
    """Bring the console's pair index up to date (tunegate/pair_index.py). Here, after each look,
    because the leader's loop is the one process that runs wherever decisions are made, off the
    proxy's event loop; the console folds only what arrived since, before a filtered page."""
    from redis.exceptions import RedisError

    from analysis.controller import Controller
    from tunegate.pair_index import PairIndex

    assert isinstance(controller, Controller)
    try:
        await PairIndex(controller.redis, name).catch_up(INDEX_PAGES_PER_LOOK)
    except (TunegateError, RedisError) as exc:  # the browser falls back to its scan meanwhile
        log.warning("folding the pair index of %s failed: %s", name, exc)


async def _experiments(args: argparse.Namespace, settings: object, controller: object) -> list[str]:
    """Give the controller the experiments the proxies serve; the names to decide this round.

    With ``proxy.experiments_from: redis`` they are the live definitions in Redis (seeded from
    the file as a proxy seeds them), read again every round; else the config file's.
    """
    from analysis.controller import Controller
    from cli.settings import Settings
    from tunegate.definitions import current_definitions

    assert isinstance(settings, Settings) and isinstance(controller, Controller)
    configs = settings.experiments
    if settings.proxy.experiments_from == "redis":
        configs = await current_definitions(controller.redis, settings.experiments)
    if args.observe_only:
        configs = observe_only(configs)
    controller.experiments = {c.name: c for c in configs}
    if controller.metrics is not None:
        for config in configs:
            controller.metrics.touch(config.name)
    if args.all:
        return sorted(controller.experiments)
    return [args.experiment] if args.experiment in controller.experiments else []


async def _lead(leader: object, controller: object, names: list[str]) -> bool:
    """Whether this replica holds the lease now; if so, fence every experiment with its token."""
    from analysis.controller import Controller
    from tunegate.lease import Leadership
    from tunegate.state import raise_fence

    assert isinstance(leader, Leadership) and isinstance(controller, Controller)
    token = leader.token
    if token is None:
        return False
    for name in names:
        try:
            raised = await raise_fence(controller.redis, name, token)
        except TunegateError as exc:
            log.warning("fence %s failed: %s", name, exc)
            return False
        if not raised:
            log.warning("lease token %d is stale for %s: a newer leader runs", token, name)
            return False
    controller.fence = token
    return True


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
