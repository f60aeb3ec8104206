"""Model-server and judge doubles that the benchmarks and the tests share (real HTTP)."""
