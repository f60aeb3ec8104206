"""Benchmarks of the offline gate (tunegate eval)."""
