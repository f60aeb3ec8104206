"""The evidence behind a Decision as a rich Table (what `tunegate report` and the demo print).

The judge row shows the estimate beside the running interval (the intersection over every look,
which the decision uses) and this look's own interval, and says so when the running one no
longer contains the estimate; one row per always-valid test gives its statistic, p-value or
interval, the alpha it was given and whether it fired.
"""

from __future__ import annotations

from rich.table import Table

from tunegate.records import Decision

__all__ = ["evidence_table"]


def _num(value: object, fmt: str = ".3f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def evidence_table(decision: Decision) -> Table:
    """One row per quantity: judge gate, categories, guardrails, SRM, live metrics, decision."""
    ev = decision.evidence
    table = Table(title=f"{decision.experiment}: {decision.action.value}", show_lines=False)
    table.add_column("evidence", no_wrap=True)
    for column in ("estimate", "interval / bound", "p / status", "n"):
        table.add_column(column)
    judge, summary = _dict(ev.get("judge")), _dict(ev.get("summary"))
    drift = " estimate outside: drifted" if judge.get("estimate_outside") else ""
    table.add_row(
        "judge win rate",
        _num(judge.get("win_rate")),
        f"running {_num(judge.get('cs_lower'))} - {_num(judge.get('cs_upper'))};"
        f" this look {_num(judge.get('current_lower'))} - {_num(judge.get('current_upper'))}"
        f" ({judge.get('cs_method', '-')}){drift}",
        f"p = {_num(judge.get('p_value'), '.3g')}",
        str(judge.get("n", 0)),
    )
    table.add_row(
        "wins / losses / ties",
        f"{summary.get('wins', 0)} / {summary.get('losses', 0)} / {summary.get('ties', 0)}",
        f"Wilson {_num(_first(summary.get('wilson')))} - {_num(_last(summary.get('wilson')))}",
        f"sign p = {_num(summary.get('sign_test_p'), '.3g')}",
        str(summary.get("n", 0)),
    )
    for cat in _list(ev.get("categories")):
        status = (
            "REGRESSION" if cat.get("significant") else ("blocked" if cat.get("blocks") else "ok")
        )
        table.add_row(
            f"category {cat.get('category')}",
            f"net {_num(cat.get('net'), '+.1%')}",
            f"tolerance {_num(cat.get('tolerance'), '.0%')}",
            f"{status} (Holm p = {_num(cat.get('p_regression'), '.3g')})",
            str(cat.get("n", 0)),
        )
    for g in _list(ev.get("guardrails")):
        status = "BREACHED" if g.get("breached") else ("holds" if g.get("holds") else "unproven")
        table.add_row(
            f"guardrail {g.get('name')}",
            f"{_num(g.get('candidate'), '.4g')} vs {_num(g.get('control'), '.4g')}",
            f"margin {_num(g.get('margin'), 'g')}",
            status,
            str(g.get("n_candidate", 0)),
        )
    srm = _dict(ev.get("srm"))
    if srm:
        table.add_row(
            "sample ratio",
            _num(srm.get("observed_candidate_share")),
            f"expected {_num(srm.get('expected_candidate_share'))}",
            f"p = {_num(srm.get('p_value'), '.3g')}",
            str(int(_n(srm.get("control"))) + int(_n(srm.get("candidate")))),
        )
    for label, live in _dict(ev.get("live")).items():
        item = _dict(live)
        table.add_row(
            f"live {label}",
            _num(item.get("difference"), "+.4f"),
            f"{_num(item.get('lower'), '+.4f')} - {_num(item.get('upper'), '+.4f')}",
            "superior" if item.get("superior") else "not shown",
            f"{item.get('users_control', 0)}+{item.get('users_candidate', 0)} users",
        )
    for test in _list(ev.get("tests")):
        shown = (
            f"p = {_num(test.get('p_value'), '.3g')}"
            if test.get("p_value") is not None
            else f"{_num(_first(test.get('interval')), '.4g')} - "
            f"{_num(_last(test.get('interval')), '.4g')}"
        )
        table.add_row(
            f"test {test.get('name')}",
            _num(test.get("estimate"), ".4g"),
            f"{shown} ({test.get('method')})",
            f"alpha {_num(test.get('alpha'), '.2g')}: {'FIRED' if test.get('fired') else '-'}"
            f" -> {test.get('acts')}",
            f"{test.get('n', 0)} (min {test.get('min_sample', 0)})",
        )
    needed = "" if decision.samples_needed is None else f", ~{decision.samples_needed} more"
    table.caption = f"{decision.action.value}{needed}: {decision.reason}"
    return table


def _n(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _first(value: object) -> object:
    return value[0] if isinstance(value, list) and value else None


def _last(value: object) -> object:
    return value[-1] if isinstance(value, list) and value else None
