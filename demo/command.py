"""`tunegate demo`: the whole loop on real models in one command — mirror, log, judge, decide.

Default: SmolLM2-135M-Instruct vs two LoRA fine-tunes for support-ticket triage (shipped in
demo/adapters/, built by scripts/build_demo_adapters.py; ``--train`` trains them at start), with
capability probes; ``--embeddings``: MiniLM vs a contrastively fine-tuned MiniLM on article
retrieval. Exit codes: 0 the demo ran (whatever the verdict), 1 a step failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from tunegate.errors import TunegateError

__all__ = ["register", "run"]

#: --quick: a handful of items (and training steps with --train); the pipeline is the real one
QUICK = {"steps": 4, "items": 4, "probes": 4, "ab_rounds": 2, "users": 8}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _tolerance(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="see the whole loop on a real chat model (no GPU, Redis or API key needed)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--embeddings", action="store_true", help="the MiniLM retrieval demo")
    parser.add_argument("--quick", action="store_true", help="few steps and items (smoke test)")
    parser.add_argument(
        "--train",
        action="store_true",
        help="train the adapters (or reuse them from the cache) instead of the shipped ones",
    )
    parser.add_argument(
        "--steps",
        type=_positive,
        default=None,
        metavar="N",
        help="training steps (a recipe other than the shipped one: trains)",
    )
    parser.add_argument(
        "--items", type=_positive, default=None, metavar="N", help="held-out task items to send"
    )
    parser.add_argument(
        "--probes", type=_positive, default=None, metavar="N", help="probes to send"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(".tunegate/demo"),
        metavar="DIR",
        help="Redis data and reports (default .tunegate/demo)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="trained models (default $XDG_CACHE_HOME/tunegate or ~/.cache/tunegate)",
    )
    parser.add_argument(
        "--retrain", action="store_true", help="train even if cached (implies --train)"
    )
    parser.add_argument(
        "--no-offline",
        action="store_true",
        help="skip the offline gate (tunegate eval) that runs before any traffic",
    )
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="decode every answer, even an identical temperature-0 request answered before",
    )
    parser.add_argument(
        "--tolerance",
        type=_tolerance,
        default=None,
        help="per-category regression tolerance (policy.category_regression_tolerance;"
        " default 0.1, demo.run.DEMO_TOLERANCE)",
    )
    parser.add_argument("--judge-url", default=None, help="OpenAI-compatible LLM judge base URL")
    parser.add_argument("--judge-model", default=None, help="the LLM judge's model name")
    parser.add_argument(
        "--judge-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="variable holding the judge's API key (default OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--ab-rounds",
        type=_positive,
        default=None,
        metavar="N",
        help="A/B rounds at most for a candidate the controller moves on (default 4)",
    )
    parser.add_argument(
        "--keep-open",
        action="store_true",
        help="leave Redis and the proxy running after the summary (Ctrl-C stops them)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def _options(args: argparse.Namespace) -> object:
    from demo.run import DEMO_TOLERANCE, DemoOptions
    from judge.config import JudgeEndpoint

    quick = QUICK if args.quick else {}
    # the embeddings demo always trains (nothing is shipped for it)
    train = args.train or args.retrain or args.embeddings
    judge = None
    if args.judge_url or args.judge_model:
        if not (args.judge_url and args.judge_model):
            raise ValueError("--judge-url and --judge-model go together")
        judge = JudgeEndpoint(
            model=args.judge_model, base_url=args.judge_url, api_key_env=args.judge_key_env
        )
    return DemoOptions(
        workdir=args.workdir,
        embeddings=args.embeddings,
        quick=args.quick,
        # --quick keeps the shipped adapters unless told to train
        steps=args.steps if args.steps is not None else (quick.get("steps") if train else None),
        items=args.items if args.items is not None else quick.get("items"),
        probes=args.probes if args.probes is not None else quick.get("probes"),
        cache_dir=args.cache_dir,
        retrain=args.retrain,
        train=args.train or args.retrain,
        judge=judge,
        tolerance=DEMO_TOLERANCE if args.tolerance is None else args.tolerance,
        offline=not args.no_offline,
        ab_rounds=args.ab_rounds if args.ab_rounds is not None else quick.get("ab_rounds", 4),
        keep_open=args.keep_open,
        reuse_answers=not args.no_reuse,
        users=quick.get("users", DemoOptions.users),
    )


def run(args: argparse.Namespace) -> int:
    from demo.cache import offline_models

    offline_models()  # before any model library loads
    from rich.console import Console

    from demo.report import print_result, quiet_libraries
    from demo.run import DemoOptions, DemoResult, run_demo

    try:
        options = _options(args)
    except ValueError as exc:
        print(f"tunegate demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    assert isinstance(options, DemoOptions)
    quiet_libraries()
    console = Console(stderr=args.json)
    if options.judge is None:
        console.print(
            "Pairwise LLM judge: off (no judge endpoint; pass --judge-url and --judge-model"
            " to turn it on). Scoring with the programmatic scorers."
        )
    else:
        console.print(f"Pairwise LLM judge: on ({options.judge.model} at {options.judge.base_url})")

    def show(result: DemoResult) -> None:
        if args.json:
            print(json.dumps(result.to_json(), default=str), flush=True)
        else:
            print_result(result, console)

    try:
        asyncio.run(run_demo(options, console, show))
    except TunegateError as exc:
        print(f"tunegate demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # --keep-open ends here
        console.print("Stopped.")
    return EXIT_OK
