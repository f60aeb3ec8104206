"""What the demo prints at the end: the candidate, per-category figures, evidence, verdict, report.

The per-category table lines are stable text (``category <name>: …``) so that people and the tests
read the same figures; the evidence table is the analysis plane's own.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.table import Table

from demo.run import DemoResult
from demo.summary import CategoryFigures

__all__ = ["figures_line", "figures_table", "print_result", "quiet_libraries"]


def quiet_libraries() -> None:
    """Hide the model libraries' own progress bars and chatter; the demo shows its own."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # untyped library
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # untyped library
    except ImportError:
        pass
    for name in ("httpx", "sentence_transformers", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def figures_line(f: CategoryFigures) -> str:
    """``category tickets [json_fields]: 20 pairs, candidate 15 wins / 2 losses / 3 ties; …``."""
    return (
        f"category {f.category} [{f.scorer}]: {f.pairs} pairs, candidate {f.wins} wins /"
        f" {f.losses} losses / {f.ties} ties; mean score control {_score(f.control_score)},"
        f" candidate {_score(f.candidate_score)}"
    )


def figures_table(figures: list[CategoryFigures]) -> Table:
    table = Table(title="Per-category figures (programmatic scorers)")
    for column in ("category", "scorer", "pairs", "wins", "losses", "ties", "control", "candidate"):
        table.add_column(column, justify="left" if column in ("category", "scorer") else "right")
    for f in figures:
        table.add_row(
            f.category,
            f.scorer,
            str(f.pairs),
            str(f.wins),
            str(f.losses),
            str(f.ties),
            _score(f.control_score),
            _score(f.candidate_score),
        )
    return table


def print_result(result: DemoResult, console: Console) -> None:
    from analysis.report import evidence_table

    if result.reused:
        console.print(f"Candidate reused from the cache (no training): {result.candidate}")
    else:
        loss = "" if result.final_loss is None else f", final loss {result.final_loss:.3f}"
        console.print(
            f"Candidate trained in {result.train_seconds:.0f} s{loss}: {result.candidate}"
        )
    if result.offline is not None:
        offline = result.offline
        console.print(
            f"Offline gate (tunegate eval, before any traffic): {str(offline['outcome']).upper()}",
            markup=False,
            highlight=False,
        )
        for reason in offline.get("reasons") or []:  # type: ignore[attr-defined]  # a list
            console.print(f"  {reason}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"  offline report: {offline['report']}", markup=False, highlight=False)
    console.print(
        f"Sent {result.sent} requests through the proxy (shadow stage, 100 % mirrored)"
        + (f"; {len(result.failed)} failed: {result.failed[0]}" if result.failed else ".")
    )
    console.print(figures_table(result.figures))
    for f in result.figures:
        console.print(figures_line(f), markup=False, highlight=False, soft_wrap=True)
    console.print(evidence_table(result.decision))
    d = result.decision
    console.print(
        f"Verdict: {d.action.value} (stage {d.stage_before.value} -> {d.stage_after.value})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for reason in d.reasons:
        console.print(f"  {reason}", markup=False, highlight=False, soft_wrap=True)
    if d.needs_approval:
        console.print("  (recorded; an operator applies it with `tunegate decide --apply`)")
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
    console.print(f"Timings: {timings}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"HTML report: {result.report}", markup=False, highlight=False, soft_wrap=True)
