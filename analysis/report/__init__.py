"""Reports of an experiment's evidence: a rich table for terminals and an HTML page with plots."""

from analysis.report.html import render_html
from analysis.report.table import evidence_table

__all__ = ["evidence_table", "render_html"]
