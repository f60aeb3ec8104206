"""What every subcommand shares: the --config flag, settings loading with exit 2, logging."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cli.settings import Settings, load_settings
from tunegate.errors import ConfigError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_common",
    "settings_from_args",
    "setup_logging",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_common(parser: argparse.ArgumentParser) -> None:
    """--config and --json, shared by every subcommand."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="YAML settings file (overridden by TUNEGATE_* variables and flags)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


class UsageExit(SystemExit):
    """Raised after printing a config error; exits 2."""


def settings_from_args(args: argparse.Namespace, **overrides: object) -> Settings:
    """Load settings or print the field path and reason and exit 2 (no traceback)."""
    try:
        return load_settings(args.config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        print(f"tunegate: invalid configuration:\n{exc}", file=sys.stderr)
        raise UsageExit(EXIT_USAGE) from None


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
