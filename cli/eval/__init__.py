"""`tunegate eval`: the offline gate. Did the fine-tune improve the task, break nothing else,
and is the difference real?

tunegate eval --spec eval.yaml [--config tunegate.yaml] [--out DIR] [--json]
tunegate eval --control BASE --candidate TUNED --test test.jsonl [--metric M] [--probes general]
tunegate eval split --input all.jsonl --out DIR [--seed N]

Exit codes: 0 pass, 1 fail (the regressions are named), 2 usage or configuration error,
3 inconclusive (the number of items that would settle it is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_USAGE, add_common, settings_from_args, setup_logging
from tunegate.errors import ConfigError, StoreUnavailable

__all__ = ["EXIT_CODES", "register", "run"]

EXIT_CODES = """\
exit codes:
  0  pass: every task metric improves, no probe category regresses
  1  fail: a regression is shown (each is named)
  2  usage or configuration error
  3  inconclusive: more items are needed (how many is printed)
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="offline gate: compare a fine-tune with its base on a locked test set and probes",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(parser)
    parser.add_argument("--spec", type=Path, default=None, metavar="FILE", help="eval spec YAML")
    parser.add_argument("--control", default=None, metavar="UPSTREAM", help="control upstream")
    parser.add_argument("--candidate", default=None, metavar="UPSTREAM", help="candidate upstream")
    parser.add_argument("--system-prompt", default=None, help="the control's production prompt")
    parser.add_argument(
        "--zero-shot", action="store_true", help="compare against a bare zero-shot base"
    )
    parser.add_argument("--test", type=Path, default=None, metavar="FILE", help="test set")
    parser.add_argument("--metric", action="append", default=None, help="task metric (repeatable)")
    parser.add_argument(
        "--probes", default=None, metavar="SUITE", help="probe suite: general or a file"
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--record", action="store_true", help="record the result in Redis for the live gate"
    )
    parser.add_argument("--no-html", action="store_true", help="skip the HTML report")
    parser.set_defaults(func=run, eval_command=None)
    sub = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    split = sub.add_parser("split", help="80/10/10 stratified split with a locked test manifest")
    split.add_argument("--input", type=Path, required=True, metavar="FILE")
    split.add_argument("--out", type=Path, required=True, metavar="DIR")
    split.add_argument("--seed", type=int, default=0)
    split.set_defaults(func=run_split)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for arm in ("control", "candidate"):
        upstream = getattr(args, arm)
        if upstream is not None:
            overrides[arm] = {"upstream": upstream}
    if args.system_prompt is not None:
        control = dict(overrides.get("control") or {})  # type: ignore[call-overload]  # a dict
        control["system_prompt"] = args.system_prompt
        overrides["control"] = control
    if args.zero_shot:
        overrides["control_kind"] = "zero_shot"
    if args.test is not None:
        test: dict[str, object] = {"name": "task", "path": str(args.test.resolve())}
        if args.metric:
            test["metrics"] = args.metric
        overrides["tests"] = [test]
    if args.probes is not None:
        suite = args.probes if args.probes == "general" else str(Path(args.probes).resolve())
        overrides["probes"] = [{"suite": suite}]
    for key, value in (("out_dir", args.out), ("cache_dir", args.cache_dir), ("seed", args.seed)):
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    return overrides


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from analysis.offline.spec import load_spec

    settings = settings_from_args(args)
    setup_logging(settings.log_level)
    console = Console(stderr=True)
    try:
        spec = load_spec(args.spec, **_overrides(args))
        return asyncio.run(_evaluate(spec, settings, args, console))
    except ConfigError as exc:
        print(f"tunegate eval: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnavailable as exc:
        print(f"tunegate eval: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the edge of the command: a judge that kept failing, say
        from judge.errors import JudgeError

        if not isinstance(exc, JudgeError):
            raise
        print(f"tunegate eval: the LLM judge failed: {exc}", file=sys.stderr)
        return 1


async def _evaluate(spec: Any, settings: Any, args: argparse.Namespace, console: Any) -> int:
    from rich.console import Console

    from analysis.offline.report import render_markdown, render_terminal
    from cli.eval.judging import calibrated_judge
    from cli.eval.pipeline import evaluate

    async with calibrated_judge(spec, settings) as judge:
        outcome = await evaluate(spec, settings, console, judge=judge)
    (outcome.out_dir / "summary.md").write_text(render_markdown(outcome.document))
    if not args.no_html:
        from analysis.offline.report import render_html

        await asyncio.to_thread(render_html, outcome.document, outcome.out_dir / "report.html")
    if args.record:
        from cli.eval.record import record_result

        await record_result(settings, outcome.document)
    if args.json:
        from analysis.offline.report.contract import dumps

        sys.stdout.write(dumps(outcome.document).decode() + "\n")
    else:
        render_terminal(outcome.document, Console())
    code: int = outcome.result.outcome.exit_code
    return code


def run_split(args: argparse.Namespace) -> int:
    from cli.eval.hygiene import split_file

    try:
        written = split_file(args.input, args.out, args.seed)
    except ConfigError as exc:
        print(f"tunegate eval split: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    return 0
