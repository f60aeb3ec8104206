"""The HTML report: win rate with its confidence sequence, category forest plot, latencies.

Plots are drawn with matplotlib's object API (no pyplot state, safe off the main thread) and
embedded as base64 PNG, so the report is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.evidence import Evidence
from analysis.gate import judge_gate
from analysis.guardrails import category_regressions
from tunegate.experiments import Policy
from tunegate.records import Arm, Decision

__all__ = ["render_html"]


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _win_rate_plot(evidence: Evidence, policy: Policy) -> str:
    gate = judge_gate(evidence.judge.scores, policy)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    if gate.n:
        t = np.arange(1, gate.n + 1)
        ax.fill_between(
            t, gate.path_lower, gate.path_upper, alpha=0.3, label="confidence sequence (running)"
        )
        ax.plot(t, gate.path_mean, label="win rate")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.axhline(policy.win_rate_bar, color="green", linestyle=":", linewidth=1, label="bar")
    ax.set(xlabel="judged pairs", ylabel="candidate win rate", ylim=(0, 1))
    ax.legend(loc="lower right")
    return _png(fig)


def _forest_plot(evidence: Evidence, policy: Policy) -> str:
    judge = evidence.judge
    rows = category_regressions(
        judge.scores, judge.categories, policy.category_regression_tolerance, policy.alpha
    )
    fig = Figure(figsize=(7, 0.6 * max(len(rows), 1) + 1.2))
    ax = fig.add_subplot()
    labels = np.asarray(judge.categories, dtype=object)
    for i, row in enumerate(rows):
        d = 2 * judge.scores[labels == row.category] - 1
        half = 1.96 * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else 1.0
        ax.errorbar(row.net, i, xerr=half, fmt="o", color="red" if row.beyond_tolerance else "C0")
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.axvline(-policy.category_regression_tolerance, color="red", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{r.category} (n={r.n})" for r in rows])
    ax.set(
        xlabel="net score (wins - losses) / n, fixed-sample 95% interval (descriptive)",
        xlim=(-1, 1),
    )
    return _png(fig)


def _latency_plot(evidence: Evidence) -> str:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    for arm in Arm:
        values = evidence.pairs.latency.get(arm, np.zeros(0))
        values = values[~np.isnan(values)]
        if values.size:
            ax.hist(values, bins=40, alpha=0.5, label=f"{arm.value} (n={values.size})")
    ax.set(xlabel="latency (s)", ylabel="requests")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return _png(fig)


def render_html(policy: Policy, evidence: Evidence, decision: Decision, out_dir: Path) -> Path:
    """Write ``<out_dir>/<experiment>.html`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{decision.experiment}.html"
    images = {
        "Win rate and its confidence sequence": _win_rate_plot(evidence, policy),
        "Per-category net score (forest plot)": _forest_plot(evidence, policy),
        "Latency per arm": _latency_plot(evidence),
    }
    figures = "\n".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}'"
        f" src='data:image/png;base64,{data}'>"
        for title, data in images.items()
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tunegate: {html.escape(decision.experiment)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}pre{{background:#f4f4f4;
padding:1em;overflow:auto}}</style></head><body>
<h1>{html.escape(decision.experiment)}: {html.escape(decision.action.value)}</h1>
<p>{html.escape(decision.reason)}</p>
{figures}
<h2>Evidence</h2><pre>{html.escape(json.dumps(decision.evidence, indent=2, default=str))}</pre>
</body></html>
"""
    path.write_text(body, encoding="utf-8")
    return path
