"""Ask the demo's base model (or the base with an adapter) many questions, as the demo asks them.

The build scripts (``scripts/build_demo_probes.py``, ``scripts/build_demo_general.py``) use it:
the proxy's in-process backend, the plain question as one user turn, greedy, at most the demo's
token limit, the demo's batch size; ``on_progress(done, total, seconds)`` is called every 16
answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

__all__ = ["Progress", "ask", "print_progress"]

#: Called with (answers done, answers in all, seconds since the first question).
Progress = Callable[[int, int, float], None]


def print_progress(done: int, total: int, seconds: float) -> None:
    """The build scripts' progress line."""
    print(f"[{seconds:7.1f}s] {done}/{total}", flush=True)  # noqa: T201  # a script's output


async def _answers(
    base: str, prompts: list[str], adapter: str | None, on_progress: Progress | None
) -> list[str]:
    from demo.generative import MAX_TOKENS, local_upstream
    from proxy.upstream import build_upstream
    from tunegate.records import ArmResult
    from tunegate.responses import parse_response

    # every question is queued at once
    config = local_upstream(base, adapter, max_queue=max(256, len(prompts)))
    upstream = build_upstream("smollm2-base", config)
    await upstream.start()  # type: ignore[attr-defined]  # the in-process backend has start()
    started = time.perf_counter()
    done = 0

    async def one(prompt: str) -> str:
        nonlocal done
        body = {
            "model": "smollm2-base",
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "max_tokens": MAX_TOKENS,
        }
        answer = await upstream.send(
            "POST",
            "/chat/completions",
            json.dumps(body).encode(),
            {"content-type": "application/json"},
            600.0,
        )
        result = ArmResult(
            upstream="smollm2-base", model="smollm2-base", status=answer.status,
            body=answer.body.decode(),
        )  # fmt: skip
        done += 1
        if on_progress is not None and done % 16 == 0:
            on_progress(done, len(prompts), time.perf_counter() - started)
        return parse_response(result).text

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        await upstream.aclose()


def ask(
    base: str,
    prompts: list[str],
    adapter: str | None = None,
    on_progress: Progress | None = print_progress,
) -> list[str]:
    """Each prompt's answer, in order."""
    return asyncio.run(_answers(base, prompts, adapter, on_progress))
