"""Benchmarks: one command each (`python -m bench.<name>`), medians and ratios against a baseline
measured in the same run."""
