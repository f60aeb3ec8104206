"""`python -m bench.scale`: the cost of one controller look as the history grows (issue 16)."""
