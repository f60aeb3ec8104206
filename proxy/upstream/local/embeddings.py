"""The in-process embeddings upstream: /embeddings with the model's own pooling and normalization.

Pooling (mean, CLS, max, last token) and L2 normalization follow the sentence-transformers
directory's modules.json, so vectors match what the model's authors publish. Requests are batched
dynamically (batcher.py) and encoded in a worker thread; ``encoding_format: base64`` (the
``openai`` SDK's default) returns little-endian float32, like the OpenAI API.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
import orjson
import torch

from proxy.config import LocalModelConfig
from proxy.errors import BadRequest, UpstreamTimeout, UpstreamUnavailable
from proxy.extract import parse_body
from proxy.upstream.base import Headers, UpstreamResponse, UpstreamStream
from proxy.upstream.local.batcher import Batcher
from proxy.upstream.local.lifecycle import LocalUpstream
from proxy.upstream.local.loading import LoadedEncoder, load_encoder
from proxy.upstream.local.openai_io import error_body

__all__ = ["EmbeddingJob", "EmbeddingsUpstream", "embed_texts", "pool"]


@dataclass(eq=False)
class EmbeddingJob:
    """One request's texts and the future its vectors and token count arrive on."""

    texts: list[str]
    loop: asyncio.AbstractEventLoop
    result: asyncio.Future[tuple[np.ndarray, int]] = field(init=False)
    _cancelled: bool = False

    def __post_init__(self) -> None:
        self.result = self.loop.create_future()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def _settle(self, value: tuple[np.ndarray, int] | None, exc: BaseException | None) -> None:
        if self.result.done():
            return
        if exc is not None:
            self.result.set_exception(exc)
        else:
            assert value is not None
            self.result.set_result(value)

    def resolve(self, vectors: np.ndarray, tokens: int) -> None:
        self.loop.call_soon_threadsafe(self._settle, (vectors, tokens), None)

    def fail(self, exc: BaseException) -> None:
        """The worker failed: the caller sees UpstreamUnavailable (the seam for torch errors)."""
        error = UpstreamUnavailable(f"local model failed: {exc}")
        error.__cause__ = exc
        self.loop.call_soon_threadsafe(self._settle, None, error)


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Sentence vectors from token states (``mask`` 1 for real tokens; right padding)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    return summed / (counts.sqrt() if mode == "mean_sqrt_len" else counts)


def embed_texts(
    encoder: LoadedEncoder, texts: list[str], chunk: int
) -> tuple[np.ndarray, list[int]]:
    """Float32 vectors for ``texts`` (``chunk`` per forward pass) and each text's token count."""
    vectors: list[np.ndarray] = []
    tokens: list[int] = []
    with encoder.lock, torch.inference_mode():
        for start in range(0, len(texts), chunk):
            batch = encoder.tokenizer(
                texts[start : start + chunk],
                padding=True,
                truncation=True,
                max_length=encoder.max_length,
                return_tensors="pt",
            ).to(encoder.device)
            hidden = encoder.model(**batch).last_hidden_state
            pooled = pool(hidden, batch["attention_mask"], encoder.pooling).float()
            if encoder.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            vectors.append(pooled.cpu().numpy())
            tokens.extend(int(n) for n in batch["attention_mask"].sum(dim=1).tolist())
    return np.concatenate(vectors).astype(np.float32), tokens


def _embed_jobs(encoder: LoadedEncoder, chunk: int, jobs: list[EmbeddingJob]) -> None:
    vectors, tokens = embed_texts(encoder, [text for job in jobs for text in job.texts], chunk)
    offset = 0
    for job in jobs:
        end = offset + len(job.texts)
        job.resolve(vectors[offset:end], sum(tokens[offset:end]))
        offset = end


def _parse(raw: bytes) -> tuple[str, list[str], str, int | None]:
    body = parse_body(raw)
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("input must be a string or a non-empty list of strings", param="input")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest("encoding_format must be float or base64", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and not isinstance(dimensions, int):
        raise BadRequest("dimensions must be an integer", param="dimensions")
    return str(body.get("model") or ""), [str(t) for t in texts], str(fmt), dimensions


def _body(model: str, vectors: np.ndarray, tokens: int, fmt: str) -> bytes:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
            if fmt == "base64"
            else v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


class EmbeddingsUpstream(LocalUpstream[EmbeddingJob]):
    """A local sentence encoder behind the Upstream protocol (``/embeddings`` only)."""

    def __init__(self, name: str, cfg: LocalModelConfig) -> None:
        super().__init__(name, cfg)
        self.encoder: LoadedEncoder | None = None

    async def _load(self) -> Batcher[EmbeddingJob]:
        self.encoder = encoder = await asyncio.to_thread(load_encoder, self.cfg)
        return self._batcher(functools.partial(_embed_jobs, encoder, self.cfg.max_batch_size))

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
            if path != "/embeddings":
                raise BadRequest(f"{path} is not served by embeddings model {self.name}")
            model, texts, fmt, dimensions = _parse(body)
            batcher = await self.lifecycle.running()
            assert self.encoder is not None
            if dimensions is not None and dimensions != self.encoder.dimensions:
                raise BadRequest(
                    f"dimensions must be {self.encoder.dimensions} for this model",
                    param="dimensions",
                )
        except BadRequest as exc:
            return UpstreamResponse(exc.status, error_body(exc))
        job = EmbeddingJob(texts, asyncio.get_running_loop())
        batcher.submit(job, shadow=shadow)
        try:
            vectors, tokens = await asyncio.wait_for(asyncio.shield(job.result), timeout_s)
        except TimeoutError:
            raise UpstreamTimeout(f"local embeddings took over {timeout_s:g}s") from None
        finally:
            job.cancel()
        return UpstreamResponse(200, _body(model, vectors, tokens, fmt))

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
        """Embeddings do not stream: the whole answer is one chunk."""
        response = await self.send("POST", path, body, headers, timeout_s, shadow=shadow)
        yield _OneChunk(response.status, response.body)


@dataclass(eq=False)
class _OneChunk:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Headers = field(default_factory=list)

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body
