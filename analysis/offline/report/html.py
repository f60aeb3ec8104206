"""One self-contained HTML report of an offline evaluation (no CDN: plots are inline base64 PNG).

Sections: the outcome and its reasons; every difference with its interval (a forest plot); per
category, both arms' scores (bars); the items that one arm won and the other lost, with both
answers side by side; for embeddings, the 2-D projection of the same points under both models;
the training curves when the trainer's log was given. Plots use matplotlib's object API (no
pyplot state), so rendering is safe off the main thread.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.offline.report.rows import MARKS, comparison_label, comparisons, interval, number

__all__ = ["render_html"]

_COLOURS = {"pass": "#2e7d32", "warn": "#f9a825", "fail": "#c62828", "inconclusive": "#1565c0"}
_MAX_ITEMS = 40


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _forest(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    fig = Figure(figsize=(8, 0.35 * len(rows) + 1.2))
    ax = fig.add_subplot()
    for i, c in enumerate(reversed(rows)):
        diff, low, high = (float(c.get(k) or 0.0) for k in ("diff", "ci_low", "ci_high"))  # type: ignore[arg-type]
        colour = _COLOURS.get(str(c.get("verdict")), "grey")
        ax.errorbar(diff, i, xerr=[[diff - low], [high - diff]], fmt="o", color=colour, capsize=3)
        margin = c.get("margin")
        if isinstance(margin, int | float) and margin:
            ax.plot([-margin], [i], marker="|", color="black", markersize=12)
    ax.set_yticks(range(len(rows)), [comparison_label(c) for c in reversed(rows)])
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("candidate - control (relative for probes); bar: margin")
    return _png(fig)


def _bars(rows: list[dict[str, object]]) -> str:
    """Both arms' score per category, one panel per (set, metric)."""
    groups: dict[str, list[dict[str, object]]] = {}
    for c in rows:
        if str(c.get("set", "")).endswith(":clean"):
            continue
        groups.setdefault(f"{c.get('set')}/{c.get('metric')}", []).append(c)
    if not groups:
        return ""
    fig = Figure(figsize=(8, 2.6 * len(groups)))
    for k, (name, items) in enumerate(sorted(groups.items()), start=1):
        ax = fig.add_subplot(len(groups), 1, k)
        x = np.arange(len(items))
        ax.bar(x - 0.2, [float(c.get("control") or 0) for c in items], 0.4, label="control")  # type: ignore[arg-type]
        ax.bar(x + 0.2, [float(c.get("candidate") or 0) for c in items], 0.4, label="candidate")  # type: ignore[arg-type]
        ax.set_xticks(x, [str(c.get("category")) for c in items], rotation=20)
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _projection(embeddings: object) -> str:
    projection = embeddings.get("projection") if isinstance(embeddings, dict) else None
    if not isinstance(projection, dict):
        return ""
    base = np.asarray(projection.get("control") or [], dtype=float)
    tuned = np.asarray(projection.get("candidate") or [], dtype=float)
    if base.ndim != 2 or tuned.shape != base.shape:
        return ""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.scatter(base[:, 0], base[:, 1], s=12, label="base (control)", alpha=0.7)
    ax.scatter(tuned[:, 0], tuned[:, 1], s=12, label="fine-tuned (candidate)", alpha=0.7)
    for a, b in zip(base[:60], tuned[:60], strict=False):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="grey", linewidth=0.4)
    ax.legend()
    ax.set_title("the same points under both models (PCA on the union)")
    return _png(fig)


def _curves(training: object) -> str:
    curves = training.get("curves") if isinstance(training, dict) else None
    if not isinstance(curves, dict):
        return ""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    for name, points in sorted(curves.items()):
        data = np.asarray(points or [], dtype=float)
        if data.ndim == 2 and data.shape[1] == 2 and len(data):
            ax.plot(data[:, 0], data[:, 1], marker="." if len(data) < 50 else None, label=name)
    ax.set(xlabel="step", ylabel="loss")
    ax.legend()
    return _png(fig)


def _items(document: dict[str, object]) -> str:
    rows = document.get("items")
    if not isinstance(rows, list):
        return ""
    changed = []
    for row in rows:
        scores = row.get("scores") or {}
        if not scores:
            continue
        metric = sorted(scores)[0]
        control, candidate = scores[metric]
        if control != candidate:
            changed.append((candidate - control, metric, row))
    changed.sort(key=lambda t: (t[0], t[2]["id"]))
    losses = [t for t in changed if t[0] < 0][:_MAX_ITEMS]
    wins = [t for t in reversed(changed) if t[0] > 0][:_MAX_ITEMS]
    out = []
    for title, group in (("Losses (the control did better)", losses), ("Wins", wins)):
        out.append(f"<h3>{title}: {len(group)} shown</h3>")
        if not group:
            continue
        out.append(
            "<table><tr><th>item</th><th>prompt</th><th>reference</th>"
            "<th>control</th><th>candidate</th><th>metric</th></tr>"
        )
        for _, metric, row in group:
            c, k = row["scores"][metric]
            out.append(
                "<tr>"
                f"<td>{html.escape(str(row['set']))}/{html.escape(str(row['id']))}"
                f"<br><small>{html.escape(str(row['category']))}</small></td>"
                f"<td><pre>{html.escape(str(row['prompt'])[:600])}</pre></td>"
                f"<td><pre>{html.escape(str(row.get('reference') or ''))[:400]}</pre></td>"
                f"<td><pre>{html.escape(str(row['control'])[:800])}</pre></td>"
                f"<td><pre>{html.escape(str(row['candidate'])[:800])}</pre></td>"
                f"<td>{html.escape(metric)}<br>{c:.2f} → {k:.2f}</td></tr>"
            )
        out.append("</table>")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}pre{white-space:pre-wrap;margin:0;max-width:28em;font-size:12px}
.pass{color:#2e7d32}.fail{color:#c62828}.inconclusive{color:#1565c0}.warn{color:#f9a825}
"""


def render_html(document: dict[str, object], path: Path) -> Path:
    """Write the report to ``path`` and return it."""
    rows = comparisons(document)
    outcome = str(document.get("outcome"))
    given = document.get("reasons")
    reasons = "".join(f"<li>{html.escape(str(r))}</li>" for r in given or [])  # type: ignore[attr-defined]  # a list
    table = "".join(
        f"<tr><td>{html.escape(comparison_label(c))}</td><td>{c.get('n')}</td>"
        f"<td>{number(c.get('control'))}</td><td>{number(c.get('candidate'))}</td>"
        f"<td>{interval(c)}</td><td>{number(c.get('p_adjusted'), 4)}</td>"
        f"<td class='{c.get('verdict')}'>{MARKS.get(str(c.get('verdict')), '')}"
        f" {c.get('verdict')}</td></tr>"
        for c in rows
    )
    sections = [
        f"<h1 class='{outcome}'>tunegate eval: {html.escape(outcome.upper())}</h1>",
        f"<p>{html.escape(str(document.get('name')))}, candidate"
        f" {html.escape(str(document.get('candidate_version')))}. Control:"
        f" {html.escape(str(document.get('control_note')))}.</p>",
        f"<ul>{reasons}</ul>",
        "<h2>Differences with their intervals</h2>",
        "<table><tr><th>comparison</th><th>n</th><th>control</th><th>candidate</th>"
        f"<th>difference [interval]</th><th>p (Holm)</th><th>verdict</th></tr>{table}</table>",
        _forest(rows),
        "<h2>Per category</h2>",
        _bars(rows),
    ]
    projection = _projection(document.get("embeddings"))
    if projection:
        sections += ["<h2>Embedding space</h2>", projection]
    curves = _curves(document.get("training"))
    if curves:
        sections += ["<h2>Training curves</h2>", curves]
    sections += ["<h2>Item-level wins and losses</h2>", _items(document)]
    body = "\n".join(s for s in sections if s)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>tunegate eval</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
