"""A short Markdown summary for a pull-request comment: the outcome, the regressions, a table."""

from __future__ import annotations

from analysis.offline.report.rows import MARKS, comparison_label, comparisons, interval, number

__all__ = ["render_markdown"]


def render_markdown(document: dict[str, object]) -> str:
    """The comment text for one evaluation document."""
    outcome = str(document.get("outcome"))
    mark = MARKS.get(
        "pass" if outcome == "pass" else "fail" if outcome == "fail" else "inconclusive"
    )
    lines = [
        f"### {mark} tunegate eval: **{outcome}** — {document.get('name')}"
        f" ({document.get('candidate_version')})",
        "",
        f"Control: {document.get('control_note')}.",
        "",
    ]
    regressions = document.get("regressions")
    if isinstance(regressions, list) and regressions:
        lines.append("**Regressions**")
        lines += [f"- {r}" for r in regressions]
        lines.append("")
    if document.get("items_needed") is not None:
        lines += [f"About **{document['items_needed']}** more items would settle it.", ""]
    lines += [
        "| comparison | n | control | candidate | difference [interval] | p (Holm) | |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in comparisons(document):
        p = c.get("p_adjusted") if c.get("p_adjusted") is not None else c.get("p")
        lines.append(
            f"| {comparison_label(c)} | {c.get('n')} | {number(c.get('control'))}"
            f" | {number(c.get('candidate'))} | {interval(c)} | {number(p, 4)}"
            f" | {MARKS.get(str(c.get('verdict')), '')} {c.get('verdict')} |"
        )
    return "\n".join(lines) + "\n"
