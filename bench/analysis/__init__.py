"""Monte Carlo of the decisions: the production decide() on simulated streams, beside naive."""

from bench.analysis.decisions import Cell, CellResult, run_cell

__all__ = ["Cell", "CellResult", "run_cell"]
