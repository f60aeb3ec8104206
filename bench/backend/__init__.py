"""Benchmark of the in-process causal-LM backend: dynamic batching vs one-at-a-time ``generate``.

Run: ``python -m bench.backend`` (CPU) or ``python -m bench.backend --device cuda`` (see
``run_gpu.sh``). Same model (SmolLM2-135M-Instruct GGUF), same prompts, same process.
"""

__all__: list[str] = []
