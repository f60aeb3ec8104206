"""Ask both arms for their answers through the proxy's upstream clients, cached and bounded.

Each arm is one upstream (HTTP, in-process checkpoint, GGUF, base + LoRA, or a running tunegate
proxy) built by ``proxy.upstream.build_upstream``, so the offline gate calls a model exactly as
the live path does. Requests go out ``concurrency`` at a time (the in-process backend batches
them); each answer is written to the output cache as soon as it arrives, so an interrupted run
resumes and a re-run makes no model calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence, Set
from contextlib import AsyncExitStack
from dataclasses import dataclass

import orjson

from analysis.offline.cache import CachedOutput, OutputCache, output_key
from analysis.offline.items import EvalItem
from analysis.offline.spec import ArmSpec, DecodingSpec
from proxy.config import UpstreamConfig
from proxy.errors import ProxyError
from proxy.upstream import Upstream, build_upstream
from tunegate.errors import RecordError
from tunegate.records import ArmResult
from tunegate.responses import parse_response

__all__ = ["ARMS", "ArmClients", "Job", "chat_request", "embed", "generate"]

ARMS = ("control", "candidate")
_HEADERS = {"content-type": "application/json"}


def chat_request(
    arm: ArmSpec, item: EvalItem, decoding: DecodingSpec, seed: int, sample: int
) -> dict[str, object]:
    """The chat body one arm gets for one item: system prompt, few-shot turns, the item."""
    messages: list[dict[str, object]] = []
    if arm.system_prompt:
        messages.append({"role": "system", "content": arm.system_prompt})
    for shot in arm.few_shot:
        messages += [
            {"role": "user", "content": shot.user},
            {"role": "assistant", "content": shot.assistant},
        ]
    messages += item.user_messages()
    return {
        "model": arm.model or arm.upstream,
        "messages": messages,
        **decoding.body_fields(seed + sample),
    }


@dataclass(slots=True)
class Job:
    """One request to make (or find in the cache)."""

    arm: str
    item: str
    sample: int
    request: dict[str, object]
    path: str = "/chat/completions"


def upstream_fingerprint(config: UpstreamConfig) -> str:
    """What the cache keys an upstream by besides its name: its settings (no secrets) and, for an
    in-process model, when its checkpoint or adapter last changed on disk (retrained in place)."""
    parts = [config.model_dump_json(exclude={"api_key"})]
    if config.local is not None:
        for path in (config.local.path, config.local.adapter):
            if path is not None and os.path.exists(path):
                parts.append(f"{path}@{os.stat(path).st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class ArmClients:
    """The two arms' upstream clients, entered together; ``async with`` it."""

    def __init__(
        self, arms: Mapping[str, ArmSpec], upstreams: Mapping[str, UpstreamConfig]
    ) -> None:
        self.arms = dict(arms)
        self.configs = {a.upstream: upstreams[a.upstream] for a in self.arms.values()}
        self.fingerprints = {name: upstream_fingerprint(c) for name, c in self.configs.items()}
        self.clients: dict[str, Upstream] = {}
        self._stack = AsyncExitStack()
        self.calls = 0

    async def __aenter__(self) -> ArmClients:
        for name, cfg in self.configs.items():
            client = build_upstream(name, cfg)
            self._stack.push_async_callback(client.aclose)
            start = getattr(client, "start", None)
            if start is not None:  # in-process: load the model now, not on the first request
                await start()
            self.clients[name] = client
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def call(self, arm: str, path: str, request: dict[str, object]) -> ArmResult:
        """One request; failures come back as an ArmResult with ``error``, never raised."""
        spec = self.arms[arm]
        upstream = spec.upstream
        timeout = self.configs[upstream].timeout_seconds
        started = time.perf_counter()
        self.calls += 1
        try:
            answer = await self.clients[upstream].send(
                "POST", path, orjson.dumps(request), _HEADERS, timeout
            )
        except ProxyError as exc:
            return ArmResult(upstream=upstream, model=str(request["model"]), error=str(exc))
        latency = time.perf_counter() - started
        return ArmResult(
            upstream=upstream,
            model=str(request["model"]),
            status=answer.status,
            body=answer.body.decode(errors="replace"),
            latency_s=latency,
            error=None if answer.status < 400 else "status",
        )


def _output(job: Job, key: str, result: ArmResult) -> CachedOutput:
    out = CachedOutput(key=key, arm=job.arm, item=job.item, sample=job.sample)
    out.latency_s = result.latency_s or 0.0
    if not result.ok:
        out.error = result.error or "failed"
        if result.body:
            out.error += f": {result.body[:300]}"
        return out
    try:
        parsed = parse_response(result)
    except RecordError as exc:
        out.error = f"malformed: {exc}"
        return out
    if job.path == "/embeddings":
        out.embedding = parsed.embeddings[0] if parsed.embeddings else None
        if out.embedding is None:
            out.error = "malformed: no embedding"
    else:
        out.text = parsed.text
        out.finish_reason = parsed.finish_reasons[0] if parsed.finish_reasons else None
    return out


async def run_jobs(
    clients: ArmClients,
    cache: OutputCache,
    jobs: Sequence[Job],
    *,
    concurrency: int,
    on_done: Callable[[CachedOutput], None] | None = None,
) -> dict[tuple[str, str, int], CachedOutput]:
    """Every job's answer, from the cache or the arm; at most ``concurrency`` calls at a time."""
    results: dict[tuple[str, str, int], CachedOutput] = {}
    pending: list[tuple[Job, str]] = []
    for job in jobs:
        spec = clients.arms[job.arm]
        upstream = f"{spec.upstream}#{clients.fingerprints[spec.upstream]}"
        key = output_key(
            job.arm, upstream, str(job.request["model"]), job.request, job.item, job.sample
        )
        hit = cache.get(key)
        if hit is not None:
            results[(job.arm, job.item, job.sample)] = hit
            if on_done is not None:
                on_done(hit)
        else:
            pending.append((job, key))
    limit = asyncio.Semaphore(concurrency)

    async def one(job: Job, key: str) -> None:
        async with limit:
            result = await clients.call(job.arm, job.path, job.request)
        out = _output(job, key, result)
        cache.put(out)  # written through at once: an interrupted run loses nothing it had
        results[(job.arm, job.item, job.sample)] = out
        if on_done is not None:
            on_done(out)

    async with asyncio.TaskGroup() as group:
        for job, key in pending:
            group.create_task(one(job, key))
    return results


async def generate(
    clients: ArmClients,
    cache: OutputCache,
    items: Sequence[EvalItem],
    decoding: DecodingSpec,
    *,
    seed: int,
    concurrency: int,
    bare: Set[str] = frozenset(),
    on_done: Callable[[CachedOutput], None] | None = None,
) -> dict[tuple[str, str, int], CachedOutput]:
    """Both arms' answers to every item (``item.k`` samples each for pass@k); the control
    answers the items in ``bare`` (ids) without its system prompt and few-shot turns."""
    control = clients.arms["control"]
    plain = control.model_copy(update={"system_prompt": None, "few_shot": []})

    def arm_for(arm: str, item: EvalItem) -> ArmSpec:
        return plain if arm == "control" and item.id in bare else clients.arms[arm]

    jobs = [
        Job(arm, item.id, sample, chat_request(arm_for(arm, item), item, decoding, seed, sample))
        for item in items
        for arm in ARMS
        for sample in range(item.k)
    ]
    return await run_jobs(clients, cache, jobs, concurrency=concurrency, on_done=on_done)


async def embed(
    clients: ArmClients,
    cache: OutputCache,
    texts: Mapping[str, str],
    *,
    concurrency: int,
    on_done: Callable[[CachedOutput], None] | None = None,
) -> dict[tuple[str, str, int], CachedOutput]:
    """Both arms' embedding of every text (keyed by text id), one input per request."""
    jobs = [
        Job(
            arm,
            text_id,
            0,
            {"model": clients.arms[arm].model or clients.arms[arm].upstream, "input": text},
            path="/embeddings",
        )
        for text_id, text in texts.items()
        for arm in ARMS
    ]
    return await run_jobs(clients, cache, jobs, concurrency=concurrency, on_done=on_done)
