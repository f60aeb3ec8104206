"""Eval throughput of the in-process backend: batched vs one item at a time.

    python -m bench.offline.throughput [--model packaged:smollm2] [--items 32] [--repeats 3]

Both arms of a `tunegate eval` run are asked through the proxy's in-process upstream
(proxy/upstream/local): ``batched`` sends ``--concurrency`` requests at once into a batcher of
that size, ``one at a time`` sends one request after another into a batcher of size 1. Each
repeat starts from an empty output cache (so every item is a model call); the figures are the
median items per second over the repeats and their ratio, measured in the same run. The default
model is a tiny random Llama built on the spot (no download); ``--model`` takes any local path.

``--torch-threads`` sets torch's intra-op threads (default 1). Measured on the shared 2-core
development machine (load average ~10), torch's default of 2 threads made the *batched* run
several times slower than one at a time: its parallel regions wait on a descheduled thread,
while single-row tensors stay below torch's parallel grain. With 1 thread batching wins.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from analysis.offline.items import EvalItem

__all__ = ["main"]


def _items(n: int) -> list[EvalItem]:
    return [
        EvalItem(id=f"i{i}", prompt=f"Support ticket {i}: the billing page shows error E{i}.")
        for i in range(n)
    ]


async def _once(
    model: str, items: list[EvalItem], batch: int, concurrency: int, tokens: int
) -> float:
    from analysis.offline.cache import OutputCache
    from analysis.offline.spec import ArmSpec, DecodingSpec
    from cli.eval.arms import ArmClients, generate
    from proxy.config import LocalModelConfig, UpstreamConfig

    config = UpstreamConfig(
        local=LocalModelConfig(
            path=model, device="cpu", max_batch_size=batch, batch_window_ms=5.0, max_queue=4096
        ),
        timeout_seconds=600,
    )
    arm = ArmSpec(upstream="model", system_prompt="Route the ticket.")
    decoding = DecodingSpec(max_tokens=tokens)
    with tempfile.TemporaryDirectory() as folder:
        cache = OutputCache(Path(folder))
        async with ArmClients({"control": arm, "candidate": arm}, {"model": config}) as clients:
            with cache:
                # warm-up (another seed: not cached for the timed run)
                await generate(clients, cache, items[:2], decoding, seed=1, concurrency=2)
                started = time.perf_counter()
                await generate(
                    clients,
                    cache,
                    items,
                    decoding,
                    seed=0,
                    concurrency=concurrency,
                )
                seconds = time.perf_counter() - started
    return 2 * len(items) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model path (default: a tiny random Llama)")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--torch-threads", type=int, default=1, help="0: torch's default")
    args = parser.parse_args()
    import torch

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from bench.models.tiny import build_causal_lm

            model = str(build_causal_lm(Path(folder) / "tiny"))
        items = _items(args.items)
        figures: dict[str, list[float]] = {"one at a time": [], "batched": []}
        for _ in range(args.repeats):
            figures["one at a time"].append(asyncio.run(_once(model, items, 1, 1, args.max_tokens)))
            figures["batched"].append(
                asyncio.run(
                    _once(model, items, args.concurrency, args.concurrency, args.max_tokens)
                )
            )
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"model {args.model or 'tiny random Llama'}, {args.items} items x 2 arms,"
          f" {args.max_tokens} new tokens, {args.repeats} repeats (median),"
          f" torch threads {torch.get_num_threads()}")  # fmt: skip
    for name, value in medians.items():
        print(f"  {name:>14}: {value:8.1f} answers/s")
    print(f"  batched / one at a time: {medians['batched'] / medians['one at a time']:.2f}x")


if __name__ == "__main__":
    main()
