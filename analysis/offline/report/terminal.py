"""The terminal summary: the outcome, its reasons, one table row per comparison (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analysis.offline.report.rows import comparison_label, comparisons, interval, number

__all__ = ["render_terminal"]

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "inconclusive": "cyan"}


def render_terminal(document: dict[str, object], console: Console) -> None:
    """Print the summary of one evaluation document."""
    title = f"offline gate: {document.get('name')} ({document.get('candidate_version')})"
    table = Table(title=escape(title))
    for column in ("comparison", "n", "control", "candidate", "difference [interval]", "p (Holm)"):
        table.add_column(escape(column), justify="left" if column == "comparison" else "right")
    table.add_column("verdict")
    for c in comparisons(document):
        verdict = str(c.get("verdict"))
        p = c.get("p_adjusted") if c.get("p_adjusted") is not None else c.get("p")
        table.add_row(
            escape(comparison_label(c)),
            str(c.get("n")),
            number(c.get("control")),
            number(c.get("candidate")),
            interval(c),
            number(p, 4),
            f"[{_STYLE.get(verdict, '')}]{verdict}[/]",
        )
    console.print(table)
    console.print(f"control: {document.get('control_note')}", markup=False)
    outcome = str(document.get("outcome"))
    console.print(f"[{_STYLE.get(outcome, '')}]outcome: {outcome.upper()}[/]")
    for reason in document.get("reasons") or []:  # type: ignore[attr-defined]  # a list
        console.print(f"  {reason}", markup=False, highlight=False, soft_wrap=True)
