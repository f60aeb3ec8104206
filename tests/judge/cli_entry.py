"""Run `tunegate judge …` with only the judge subcommand registered (for subprocess drills).

``python -m tests.judge.cli_entry judge --config PATH [flags]`` behaves like the console script
but does not import the other planes' subcommands.
"""

from __future__ import annotations

import argparse
import sys

from cli import judge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tunegate")
    judge.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
