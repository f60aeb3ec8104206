"""`tunegate report`: print an experiment's evidence as a table and write the HTML report.

The decision shown is computed now and not recorded. Exit codes: 0 written; 1 Redis is
unreachable; 2 usage or config error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_common, settings_from_args
from tunegate.errors import TunegateError

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("report", help="evidence table and HTML report")
    parser.add_argument("experiment", help="experiment name")
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (analysis.report_dir)"
    )
    add_common(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    settings = settings_from_args(args)
    config = settings.experiment(args.experiment)
    if config is None:
        print(f"tunegate report: unknown experiment {args.experiment!r}", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or Path(settings.analysis.report_dir)
    try:
        return asyncio.run(_main(args, settings, out))
    except TunegateError as exc:
        print(f"tunegate report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except RedisError as exc:  # the URL answers, but not as a Redis server would
        print(
            f"tunegate report: the server at redis.url did not answer as Redis does: {exc}",
            file=sys.stderr,
        )
        return EXIT_FAILED


async def _main(args: argparse.Namespace, settings: object, out: Path) -> int:
    from rich.console import Console

    from analysis.decide import decide
    from analysis.evidence import load_evidence
    from analysis.report import evidence_table, render_html
    from cli.settings import Settings
    from tunegate.redis import connect
    from tunegate.state import read_state

    assert isinstance(settings, Settings)
    config = settings.experiment(args.experiment)
    assert config is not None
    async with connect(settings.redis) as client:
        state = await read_state(client, config.name)
        evidence = await load_evidence(client, config.name)
    decision = decide(config, state, evidence, time.time())
    path = await asyncio.to_thread(render_html, config.policy, evidence, decision, out)
    if args.json:
        print(json.dumps({"report": str(path), "decision": decision.model_dump(mode="json")}))
    else:
        console = Console()
        console.print(evidence_table(decision))
        console.print(f"report written to {path}")
    return EXIT_OK
