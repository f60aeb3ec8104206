"""`tunegate experiments ACTION`: run experiments through the proxy's admin API.

list | show NAME | create FILE | edit NAME FILE | delete NAME | approve NAME | reject NAME
| pause NAME | resume NAME | promote NAME | rollback NAME | audit NAME. FILE is one experiment
in YAML or JSON. Changes take ``--reason`` (required where the API needs one) and are recorded
with ``--actor`` (default: the login name). Tables for people, ``--json`` for tools. Exit codes:
0 done; 1 refused (401, 403, 404, 409) or no answer; 2 bad input (here or a 400 from the API).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cli.admin_client import AdminClient, AdminError, add_connection
from cli.common import EXIT_OK, EXIT_USAGE

__all__ = ["register", "run"]

_CHANGES = ("pause", "resume", "promote", "rollback")
_ACTOR = re.compile(r"[^A-Za-z0-9_.@-]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("experiments", help="list, create and operate experiments")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_connection(actions.add_parser("list", help="every experiment with its stage"))
    for name, text in (
        ("show", "one experiment: state, latest decision, reasons"),
        ("delete", "delete a definition (its history stays)"),
        ("approve", "apply the decision that waits for approval"),
        ("reject", "refuse the decision that waits for approval"),
        ("audit", "who changed what, when and why"),
        *((c, f"{c} by hand") for c in _CHANGES),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("name", help="experiment name")
        add_connection(sub)
        if name in ("reject", *_CHANGES):
            sub.add_argument("--reason", required=True, help="why (kept in the audit log)")
        if name in ("delete", *_CHANGES):
            sub.add_argument("--expected-version", type=int, default=None, metavar="N",
                             help="refuse (409) unless the version is still N")  # fmt: skip
        if name in ("approve", "reject", *_CHANGES):
            sub.add_argument("--actor", default=None, help="who (default: your login name)")
        if name == "audit":
            sub.add_argument("--count", type=int, default=20, help="newest N entries (1-1000)")
    create = actions.add_parser("create", help="create an experiment from a YAML/JSON file")
    create.add_argument("file", type=Path)
    add_connection(create)
    edit = actions.add_parser("edit", help="replace an experiment's definition from a file")
    edit.add_argument("name")
    edit.add_argument("file", type=Path)
    edit.add_argument("--expected-version", type=int, default=None, metavar="N",
                      help="the definition version it edits (default: the current)")  # fmt: skip
    add_connection(edit)
    parser.set_defaults(func=run)


def _actor(given: str | None) -> str:
    raw = given if given is not None else getpass.getuser()
    return _ACTOR.sub("-", raw)[:64] or "operator"


def _definition(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AdminError(f"cannot read {path}: {type(exc).__name__}", EXIT_USAGE) from None
    if not isinstance(loaded, dict):
        raise AdminError(f"{path}: expected one experiment (a mapping)", EXIT_USAGE)
    return loaded


def run(args: argparse.Namespace) -> int:
    if getattr(args, "count", 20) is not None and not 1 <= getattr(args, "count", 20) <= 1000:
        print("tunegate experiments: --count takes 1 to 1000", file=sys.stderr)
        return EXIT_USAGE
    try:
        with AdminClient(args) as client:
            body = _call(client, args)
    except AdminError as exc:
        print(f"tunegate experiments {args.action}: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(body))
    else:
        _show(args.action, body)
    return EXIT_OK


def _call(client: AdminClient, args: argparse.Namespace) -> Any:
    action = args.action
    if action == "list":
        return client.call("GET", "/admin/experiments")
    if action == "create":
        return client.call("POST", "/admin/experiments", json=_definition(args.file))
    path = f"/admin/experiments/{quote(args.name, safe='')}"
    if action == "show":
        return client.call("GET", f"{path}/status")
    if action == "audit":
        return client.call("GET", f"{path}/audit", params={"count": args.count})
    if action == "edit":
        definition = _definition(args.file)
        version = args.expected_version
        if version is None:
            version = client.call("GET", path)["definition_version"]
        body = {"definition": definition, "expected_version": version}
        return client.call("PUT", path, json=body)
    if action == "delete":
        version = args.expected_version
        if version is None:
            version = client.call("GET", path)["definition_version"]
        return client.call("DELETE", path, params={"expected_version": version})
    body = {"actor": _actor(args.actor)}
    if action == "reject" or action in _CHANGES:
        body["reason"] = args.reason
    if action in _CHANGES and args.expected_version is not None:
        body["expected_version"] = args.expected_version
    return client.call("POST", f"{path}/{action}", json=body)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _show(action: str, body: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if action == "list":
        table = Table("experiment", "stage", "weight", "mirror", "state v", "definition v")
        for e in body["experiments"]:
            s = e["state"]
            table.add_row(e["name"], s["stage"], f"{s['ab_weight']:g}", f"{s['mirror_rate']:g}",
                          str(s["version"]), str(e["definition_version"]))  # fmt: skip
        console.print(table)
    elif action == "audit":
        table = Table("when", "version", "who", "change", "why")
        for a in body["audit"]:
            before = a["before"]
            was = f"{before['stage']}@{before['ab_weight']:g}" if before else "-"
            now = f"{a['after']['stage']}@{a['after']['ab_weight']:g}"
            table.add_row(_when(a["time"]), str(a["after"]["version"]), a["actor"],
                          f"{was} -> {now}", a["reason"])  # fmt: skip
        console.print(table)
    elif action == "show":
        _show_status(console, body)
    elif action == "delete":
        console.print(f"deleted {body['deleted']}")
    elif "action" in body:  # approve / reject: the decision
        state = "applied" if body["applied"] else "refused"
        console.print(f"{body['experiment']}: {body['action']} {state}. {body['reason']}")
    else:
        s = body["state"]
        console.print(f"{body['name']}: {s['stage']} at weight {s['ab_weight']:g}"
                      f" (state v{s['version']}, by {s['updated_by']})")  # fmt: skip


def _show_status(console: Any, body: dict[str, Any]) -> None:
    s = body["state"]
    console.print(f"[bold]{body['name']}[/bold]  {s['stage']} at weight {s['ab_weight']:g},"
                  f" mirror {s['mirror_rate']:g}  (state v{s['version']},"
                  f" definition v{body['definition_version']}, by {s['updated_by']})")  # fmt: skip
    decision = body.get("latest_decision")
    if decision is None:
        console.print("no decision recorded yet")
        return
    waits = "  [yellow]waits for approval[/yellow]" if body["waits_for_approval"] else ""
    console.print(f"latest decision {_when(decision['time'])}: {decision['action']}"
                  f" ({decision['stage_before']} -> {decision['stage_after']}){waits}")  # fmt: skip
    for reason in decision.get("reasons") or [decision.get("reason", "")]:
        console.print(f"  - {reason}")
