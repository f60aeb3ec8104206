"""`tunegate state`: show, set, or approve the live state of an experiment; read its audit log.

`--set-stage S --weight W --reason R` writes a new state as the operator; `--approve` applies
the latest decision that waits for approval; `--audit [N]` prints the newest N state changes
(who, when, what, why), oldest first. Exit codes: 0 done; 1 nothing to approve, a stale
state, or Redis unreachable; 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_common, settings_from_args
from tunegate.errors import TunegateError
from tunegate.records import AuditEntry, Stage

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("state", help="show, set or approve an experiment's state")
    parser.add_argument("experiment", help="experiment name")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--set-stage", choices=[s.value for s in Stage], default=None)
    group.add_argument("--approve", action="store_true", help="apply the decision waiting")
    group.add_argument(
        "--audit",
        type=int,
        nargs="?",
        const=20,
        default=None,
        metavar="N",
        help="print the newest N state changes (default 20), oldest first",
    )
    parser.add_argument("--weight", type=float, default=None, help="candidate A/B weight")
    parser.add_argument("--reason", default=None, help="why (kept in the audit stream)")
    add_common(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    settings = settings_from_args(args)
    if settings.experiment(args.experiment) is None:
        print(f"tunegate state: unknown experiment {args.experiment!r}", file=sys.stderr)
        return EXIT_USAGE
    if args.set_stage and not args.reason:
        print("tunegate state: --set-stage needs --reason", file=sys.stderr)
        return EXIT_USAGE
    if args.audit is not None and not 1 <= args.audit <= 10_000:
        print("tunegate state: --audit takes a count from 1 to 10000", file=sys.stderr)
        return EXIT_USAGE
    if args.weight is not None and not 0 <= args.weight <= 1:
        print("tunegate state: --weight must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_main(args, settings))
    except TunegateError as exc:
        print(f"tunegate state: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RedisError as exc:  # the URL answers, but not as a Redis server would
        print(
            f"tunegate state: the server at redis.url did not answer as Redis does: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED


async def _main(args: argparse.Namespace, settings: object) -> int:
    from analysis.controller import Controller
    from cli.settings import Settings
    from tunegate.redis import connect
    from tunegate.state import read_audit, read_state, write_state

    assert isinstance(settings, Settings)
    config = settings.experiment(args.experiment)
    assert config is not None
    async with connect(settings.redis) as client:
        if args.audit is not None:
            _print_audit(await read_audit(client, config.name, args.audit), as_json=args.json)
            return EXIT_OK
        if args.approve:
            approved = await Controller(
                settings.experiments, client, retention=settings.retention
            ).approve(config.name)
            if approved is None:
                print(
                    "tunegate state: no decision waits for approval (or the state changed)",
                    file=sys.stderr,
                )
                return EXIT_FAILED
        elif args.set_stage:
            current = await read_state(client, config.name)
            weight = (
                args.weight
                if args.weight is not None
                else (current.ab_weight if current else config.ab_weight)
            )
            await write_state(
                client,
                config.name,
                stage=Stage(args.set_stage),
                ab_weight=weight,
                mirror_rate=current.mirror_rate if current else config.mirror_rate,
                actor="operator",
                reason=args.reason,
                audit_maxlen=settings.retention.audit,
            )
        state = await read_state(client, config.name)
    shown = (
        state.model_dump(mode="json")
        if state
        else {
            "stage": config.stage.value,
            "ab_weight": config.ab_weight,
            "version": 0,
            "updated_by": "config",
        }
    )
    print(json.dumps(shown) if args.json else "  ".join(f"{k}={v}" for k, v in shown.items()))
    return EXIT_OK


def _print_audit(entries: list[AuditEntry], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([entry.model_dump(mode="json") for entry in entries]))
        return
    if not entries:
        print("no state changes recorded")
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.time))
        before = f"{entry.before.stage.value}@{entry.before.ab_weight:g}" if entry.before else "-"
        after = f"{entry.after.stage.value}@{entry.after.ab_weight:g}"
        print(
            f"{when}Z  v{entry.after.version}  {entry.actor}  {before} -> {after}  {entry.reason}"
        )
