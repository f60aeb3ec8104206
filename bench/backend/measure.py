"""Timed runs: the batched backend at a given concurrency, and plain ``generate`` one at a time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import statistics
import time
from dataclasses import dataclass

import orjson
import torch

from proxy.config import LocalModelConfig
from proxy.upstream.local.causal_lm import CausalLMUpstream
from proxy.upstream.local.loading import LoadedLM

__all__ = ["QUESTIONS", "RunResult", "run_baseline", "run_batched"]

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "What is 12 times 7?",
    "Write one sentence about the sea.",
    "How many days are in a leap year?",
    "Give a synonym for 'happy'.",
    "What does a thermometer measure?",
    "Translate 'good morning' into Spanish.",
    "What is the boiling point of water in Celsius?",
    "List two fruits that are yellow.",
    "Who wrote Romeo and Juliet?",
    "What gas do plants take in from the air?",
]


@dataclass
class RunResult:
    """One timed run: wall time, requests, generated tokens and per-request latencies."""

    wall_s: float
    requests: int
    tokens: int
    latencies_s: list[float]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def latency_p50_s(self) -> float:
        return statistics.median(self.latencies_s)


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]


def run_baseline(lm: LoadedLM, requests: int, max_tokens: int) -> RunResult:
    """``model.generate`` greedily, one request after another (the unbatched baseline).

    It runs in a worker thread, as the backend's decoding does: on a busy CPU, torch's OpenMP
    threads in the main thread ran several times slower here, which would flatter the backend.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_generate_each, lm, requests, max_tokens).result()


def _generate_each(lm: LoadedLM, requests: int, max_tokens: int) -> RunResult:
    tokens, latencies = 0, []
    start = time.perf_counter()
    for i in range(requests):
        began = time.perf_counter()
        text = lm.tokenizer.apply_chat_template(
            messages(i), add_generation_prompt=True, tokenize=False
        )
        inputs = lm.tokenizer(text, add_special_tokens=False, return_tensors="pt").to(lm.device)
        with torch.inference_mode():
            out = lm.model.generate(
                **inputs,
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=lm.tokenizer.pad_token_id,
            )
        tokens += int(out.shape[1] - inputs["input_ids"].shape[1])
        latencies.append(time.perf_counter() - began)
    return RunResult(time.perf_counter() - start, requests, tokens, latencies)


async def _client(
    upstream: CausalLMUpstream, queue: asyncio.Queue[int], max_tokens: int, result: RunResult
) -> None:
    while not queue.empty():
        i = queue.get_nowait()
        body = {
            "model": "smol",
            "messages": messages(i),
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        began = time.perf_counter()
        response = await upstream.send("POST", "/chat/completions", orjson.dumps(body), {}, 600)
        if response.status != 200:
            raise RuntimeError(f"backend answered {response.status}: {response.body!r}")
        result.tokens += int(orjson.loads(response.body)["usage"]["completion_tokens"])
        result.latencies_s.append(time.perf_counter() - began)


async def run_batched(
    cfg: LocalModelConfig, concurrency: int, requests: int, max_tokens: int
) -> RunResult:
    """``requests`` chat requests from ``concurrency`` closed-loop clients through the backend."""
    async with CausalLMUpstream("smol", cfg) as upstream:
        await _client(upstream, _queue(1), max_tokens, RunResult(0, 0, 0, []))  # warm-up
        result = RunResult(0.0, requests, 0, [])
        queue = _queue(requests)
        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(_client(upstream, queue, max_tokens, result))
        result.wall_s = time.perf_counter() - start
    return result


def _queue(requests: int) -> asyncio.Queue[int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    return queue
