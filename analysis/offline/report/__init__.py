"""Reports of an offline evaluation, all drawn from its JSON document (the contract)."""

from __future__ import annotations

from analysis.offline.report.contract import SCHEMA_VERSION, ItemRow, build_report, dumps
from analysis.offline.report.html import render_html
from analysis.offline.report.markdown import render_markdown
from analysis.offline.report.terminal import render_terminal

__all__ = [
    "SCHEMA_VERSION",
    "ItemRow",
    "build_report",
    "dumps",
    "render_html",
    "render_markdown",
    "render_terminal",
]
