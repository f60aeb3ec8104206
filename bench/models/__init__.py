"""Tiny random-weight transformers models built on the spot, for benchmarks and tests."""
