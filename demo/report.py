"""What the demo prints at the end: the candidate, per-category figures, evidence, verdict, report.

The per-category table lines are stable text (``category <name>: …``) so that people and the tests
read the same figures; the evidence table is the analysis plane's own.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.table import Table

from demo.run import CandidateResult, DemoResult
from demo.summary import CategoryFigures
from tunegate.records import Decision, Stage

__all__ = ["figures_line", "figures_table", "print_candidate", "print_result", "quiet_libraries"]

_STAGE_ORDER = [
    s.value for s in (Stage.SHADOW, Stage.AB, Stage.PAUSED, Stage.PROMOTED, Stage.ROLLED_BACK)
]


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


def _decision(d: Decision, console: Console) -> None:
    weights = (
        f", weight {d.weight_before:.0%} -> {d.weight_after:.0%}"
        if Stage.AB in (d.stage_before, d.stage_after)
        else ""
    )
    applied = " [applied]" if d.applied else ""
    console.print(
        f"Verdict: {d.action.value} (stage {d.stage_before.value} -> {d.stage_after.value}"
        f"{weights}){applied}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for reason in d.reasons:
        console.print(f"  {reason}", markup=False, highlight=False, soft_wrap=True)
    if d.needs_approval:
        console.print("  (recorded; an operator applies it with `tunegate decide --apply`)")


def _offline(offline: dict[str, object], console: Console) -> None:
    console.print(
        f"Offline gate (tunegate eval, before any traffic): {str(offline['outcome']).upper()}",
        markup=False,
        highlight=False,
    )
    for reason in offline.get("reasons") or []:  # type: ignore[attr-defined]  # a list
        console.print(f"  {reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"  offline report: {offline['report']}", markup=False, highlight=False)


def print_candidate(result: CandidateResult, console: Console) -> None:
    """One candidate's story, from training to its last decision."""
    from analysis.report import evidence_table

    console.rule(f"{result.experiment}", style="bold")
    if result.source == "shipped":
        console.print(
            f"Candidate: the shipped project-trained adapter (sha256 checked, no training):"
            f" {result.candidate}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    elif result.reused:
        console.print(f"Candidate reused from the cache (no training): {result.candidate}")
    else:
        loss = "" if result.final_loss is None else f", final loss {result.final_loss:.3f}"
        console.print(
            f"Candidate trained in {result.train_seconds:.0f} s{loss}: {result.candidate}"
        )
    if result.offline is not None:
        _offline(result.offline, console)
    stages = sorted({d.stage_before.value for d in result.decisions}, key=_STAGE_ORDER.index)
    console.print(
        f"Sent {result.sent} requests through the proxy ({', '.join(stages)};"
        f" shadow copies 100 % mirrored; {result.feedback} feedback posts)"
        + (f"; {len(result.failed)} failed: {result.failed[0]}" if result.failed else ".")
    )
    console.print(figures_table(result.figures))
    for f in result.figures:
        console.print(figures_line(f), markup=False, highlight=False, soft_wrap=True)
    console.print(evidence_table(result.decision))
    for d in result.decisions:
        _decision(d, console)
    console.print(f"HTML report: {result.report}", markup=False, highlight=False, soft_wrap=True)


def print_result(result: DemoResult, console: Console) -> None:
    for candidate in result.candidates:
        print_candidate(candidate, console)
    console.rule()
    timings = ", ".join(
        f"{k} {v:.0f} s"
        + (f" (CPU {result.cpu_timings[k]:.0f} s)" if k in result.cpu_timings else "")
        for k, v in result.timings.items()
    )
    console.print(f"Timings: {timings}", markup=False, highlight=False, soft_wrap=True)
    computed, reused = result.answer_totals()
    if result.reuse_answers and computed + reused:
        console.print(
            f"Answers: {computed} computed, {reused} reused (an identical temperature-0 request"
            " on the same weights is answered once: the control's answers are shared by both"
            " experiments, the offline gate and every live round; each candidate's by its own"
            " offline gate and live rounds; --no-reuse turns it off)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if result.console_url:
        console.print(
            f"Console: {result.console_url} (log in with the admin token {result.console_token};"
            " it is new each run and printed only here)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
