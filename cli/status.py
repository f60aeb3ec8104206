"""`tunegate status`: every experiment's stage, weight and latest decision, from the admin API.

Exit codes: 0 shown; 1 refused (401, 403) or no answer; 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from cli.admin_client import AdminClient, AdminError, add_connection
from cli.common import EXIT_OK

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="every experiment and its latest decision")
    add_connection(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        with AdminClient(args) as client:
            names = [e["name"] for e in client.call("GET", "/admin/experiments")["experiments"]]
            found = [
                client.call("GET", f"/admin/experiments/{quote(n, safe='')}/status") for n in names
            ]
    except AdminError as exc:
        print(f"tunegate status: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({"experiments": found}))
    else:
        _table(found)
    return EXIT_OK


def _table(found: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("experiment", "stage", "weight", "latest decision", "waits", "reason")
    for body in found:
        state, decision = body["state"], body.get("latest_decision")
        table.add_row(
            body["name"],
            state["stage"],
            f"{state['ab_weight']:g}",
            decision["action"] if decision else "-",
            "yes" if body["waits_for_approval"] else "",
            (decision or {}).get("reason", "")[:80],
        )
    Console().print(table)
