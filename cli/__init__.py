"""The composition root's `tunegate` console script: one module per subcommand, planes lazy.

Exit codes: 0 success, 1 failed gate or runtime failure, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tunegate import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

#: Subcommand modules, in the order `--help` lists them. Each has ``register(subparsers) -> None``
#: which adds its parser with ``set_defaults(func=run)``, and ``run(args) -> int``. They are named,
#: not imported, here: `demo` sits above this composition root (it composes a whole stack), so
#: its command lives in demo/command.py and the layering stays one-way.
COMMANDS = (
    "demo.command",
    "cli.serve",
    "cli.judge",
    "cli.eval",
    "cli.decide",
    "cli.report",
    "cli.state",
    "cli.experiments",
    "cli.status",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunegate",
        description=(
            "Prove that a fine-tuned model beats its base on live traffic, then roll it out"
            " safely. Settings come from --config YAML, TUNEGATE_* variables and flags."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tunegate {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
