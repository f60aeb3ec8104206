"""Model-server doubles shared by the benchmarks and the tests (real HTTP, scripted replies)."""
