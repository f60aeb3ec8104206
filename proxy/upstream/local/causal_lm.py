"""The in-process causal-LM upstream: /chat/completions and /completions on a local model.

Implements the Upstream protocol of proxy/upstream/base.py. A request becomes one row of a
dynamic batch (batcher.py) decoded in a worker thread (decoding.py); streamed answers are OpenAI
SSE chunks sent as each token's text is known. Invalid requests answer 400 with the OpenAI error
body, like a model server; a full queue raises ``Overloaded`` (429 with Retry-After). The model
loads on ``start()`` (the app's lifespan) or on the first request. With ``reuse_greedy`` a
temperature-0 request already answered on the same weights is answered from the base model's
memo (memo.py) instead of being decoded again; a streamed replay sends the text in one chunk.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from proxy.config import LocalModelConfig
from proxy.errors import BadRequest, ProxyError, UpstreamTimeout, UpstreamUnavailable
from proxy.upstream.base import Headers, UpstreamResponse, UpstreamStream
from proxy.upstream.local.batcher import Batcher
from proxy.upstream.local.decoding import GenerationEvent, GenerationJob, decode_batch
from proxy.upstream.local.lifecycle import LocalUpstream
from proxy.upstream.local.loading import LoadedLM, attach_adapter, load_causal_lm
from proxy.upstream.local.memo import MemoAnswer, MemoKey
from proxy.upstream.local.openai_io import (
    GenerationRequest,
    completion_body,
    error_body,
    parse_generation_request,
    sse_chunk,
    sse_done,
    usage,
)

__all__ = ["CausalLMUpstream"]

SSE = "text/event-stream"


async def _next_event(job: GenerationJob, timeout_s: float) -> GenerationEvent:
    """The job's next event; the seam that turns worker failures into UpstreamError."""
    try:
        event = await asyncio.wait_for(job.events.get(), timeout_s)
    except TimeoutError:
        job.cancel()
        raise UpstreamTimeout(f"no token from the local model in {timeout_s:g}s") from None
    if isinstance(event.error, ProxyError):  # e.g. Overloaded: a shadow row preempted
        raise event.error
    if event.error is not None:
        raise UpstreamUnavailable(f"local model failed: {event.error}") from event.error
    return event


@dataclass(eq=False)
class _ErrorStream:
    """A 400 answer shaped as a stream (the request was invalid before anything ran)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Headers = field(default_factory=list)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body


@dataclass(eq=False)
class _TokenStream:
    """SSE chunks for one running job, yielded as its text arrives (or a kept answer, at once)."""

    job: GenerationJob | None  # None: replay ``kept``
    request: GenerationRequest
    prompt_tokens: int
    timeout_s: float
    status: int = 200
    content_type: str = SSE
    headers: Headers = field(default_factory=list)
    kept: MemoAnswer | None = None  # the replayed answer, or the decoded one once it finished

    async def events(self) -> AsyncIterator[GenerationEvent]:
        if self.job is None:
            assert self.kept is not None
            kept = self.kept
            yield GenerationEvent(text=kept.text)
            yield GenerationEvent(
                finish_reason=kept.finish_reason, completion_tokens=kept.completion_tokens
            )
            return
        pieces: list[str] = []
        while (event := await _next_event(self.job, self.timeout_s)).finish_reason is None:
            pieces.append(event.text)
            yield event
        self.kept = MemoAnswer("".join(pieces), event.finish_reason, event.completion_tokens)
        yield event

    async def chunks(self) -> AsyncIterator[bytes]:
        request = self.request
        if request.chat:
            yield sse_chunk(request, "", first=True)
        async for event in self.events():
            if event.finish_reason is None:
                yield sse_chunk(request, event.text)
                continue
            yield sse_chunk(request, "", event.finish_reason)
            if request.include_usage:
                yield sse_chunk(
                    request, None, None, usage(self.prompt_tokens, event.completion_tokens)
                )
            yield sse_done()
            return


class CausalLMUpstream(LocalUpstream[GenerationJob]):
    """A local causal LM, optionally a LoRA adapter on a shared base, as an Upstream."""

    def __init__(self, name: str, cfg: LocalModelConfig) -> None:
        super().__init__(name, cfg)
        self.lm: LoadedLM | None = None
        self.adapter: str | None = None

    async def _load(self) -> Batcher[GenerationJob]:
        lm = await asyncio.to_thread(load_causal_lm, self.cfg)
        if self.cfg.adapter:
            name = self.cfg.adapter_name or self.name
            self.adapter = await asyncio.to_thread(attach_adapter, lm, self.cfg.adapter, name)
        self.lm = lm
        return self._batcher(functools.partial(decode_batch, lm))

    def _prompt_ids(self, lm: LoadedLM, request: GenerationRequest) -> list[int]:
        tokenizer = lm.tokenizer
        if not request.chat:
            if isinstance(request.prompt, list):
                return request.prompt
            return list(tokenizer(request.prompt)["input_ids"])
        if not tokenizer.chat_template:
            raise BadRequest(f"model {self.name} has no chat template; use /completions")
        extra = {"tools": request.tools} if request.tools else {}
        text = tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False, **extra
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    async def _submit(self, request: GenerationRequest, shadow: bool) -> GenerationJob:
        """Validate the prompt and queue its row (a memo-reusing job waits for ``_claim``)."""
        batcher = await self.lifecycle.running()
        assert self.lm is not None
        ids = self._prompt_ids(self.lm, request)
        limit = self.lm.max_positions
        if not ids or (limit is not None and len(ids) >= limit):
            param = "messages" if request.chat else "prompt"
            raise BadRequest(
                f"prompt has {len(ids)} tokens; the model takes 1 to {limit}", param=param
            )
        job = GenerationJob(
            prompt_ids=ids,
            max_tokens=request.max_tokens or self.cfg.default_max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop,
            adapter=self.adapter,
            loop=asyncio.get_running_loop(),
        )
        if self._memo_key(job) is None:  # a memo claim decides first whether it must run
            batcher.submit(job, shadow=shadow)
        return job

    def _memo_key(self, job: GenerationJob) -> MemoKey | None:
        """The memo key of a greedy job on an upstream that reuses answers; else None."""
        if not self.cfg.reuse_greedy or job.temperature != 0:
            return None
        assert self.lm is not None
        adapter = self.lm.adapters.get(self.adapter) if self.adapter else None
        return MemoKey(adapter, tuple(job.prompt_ids), job.max_tokens, tuple(job.stop))

    async def _claim(self, job: GenerationJob, shadow: bool) -> MemoAnswer | bool:
        """A kept answer, or whether this request owns its decode; the job is queued then."""
        key = self._memo_key(job)
        if key is None:
            return False
        assert self.lm is not None and self.lifecycle.batcher is not None
        kept = await self.lm.memo.claim(key, shadow=shadow)
        if isinstance(kept, MemoAnswer):
            return kept
        try:
            self.lifecycle.batcher.submit(job, shadow=shadow)
        except BaseException:
            self.lm.memo.finish(key, None, owner=kept)
            raise
        return kept

    def _keep(self, job: GenerationJob, answer: MemoAnswer | None, owner: bool) -> None:
        key = self._memo_key(job)
        if key is not None and self.lm is not None:
            self.lm.memo.finish(key, answer, owner=owner)

    async def send(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
    ) -> UpstreamResponse:
        try:
            request = parse_generation_request(path, body)
            job = await self._submit(request, shadow)
        except BadRequest as exc:
            return UpstreamResponse(exc.status, error_body(exc))
        claim = await self._claim(job, shadow)
        stream = _TokenStream(job, request, len(job.prompt_ids), timeout_s)
        if isinstance(claim, MemoAnswer):
            stream.job, stream.kept = None, claim
        try:
            if request.stream:
                body = b"".join([chunk async for chunk in stream.chunks()])
                return UpstreamResponse(200, body, SSE)
            pieces = [event.text async for event in stream.events()]
        finally:
            job.cancel()  # no-op when finished; stops the row when the caller left early
            if not isinstance(claim, MemoAnswer):
                self._keep(job, stream.kept, claim)
        assert stream.kept is not None
        token_usage = usage(len(job.prompt_ids), stream.kept.completion_tokens)
        text = "".join(pieces)
        return UpstreamResponse(
            200, completion_body(request, text, stream.kept.finish_reason, token_usage)
        )

    @asynccontextmanager
    async def stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        shadow: bool = False,
    ) -> AsyncIterator[UpstreamStream]:
        try:
            request = parse_generation_request(path, body)
            job = await self._submit(request, shadow)
        except BadRequest as exc:
            yield _ErrorStream(exc.status, error_body(exc))
            return
        claim = await self._claim(job, shadow)
        stream = _TokenStream(job, request, len(job.prompt_ids), timeout_s)
        if isinstance(claim, MemoAnswer):
            stream.job, stream.kept = None, claim
        try:
            yield stream
        finally:
            job.cancel()
            if not isinstance(claim, MemoAnswer):
                self._keep(job, stream.kept, claim)
