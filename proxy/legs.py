"""One arm's call turned into an ArmResult: the shadow leg's whole call, and the result builder.

Every failure becomes a reason word on the ArmResult, so a pair always records what happened to
each arm: ``timeout``, ``connect``, ``reset``, ``protocol`` (the UpstreamError's ``reason``),
``status`` (an answer with a non-2xx status), ``overloaded`` (an in-process model's queue was
full), ``cancelled`` (client gone or shutdown) and ``internal`` (a bug in the proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from proxy.errors import Overloaded, UpstreamError
from proxy.metrics import ProxyMetrics
from proxy.pairs import PairDraft
from proxy.streaming import StreamCapture
from proxy.upstream.base import Upstream
from tunegate.records import ArmResult, trusted

__all__ = ["ShadowLeg", "arm_result", "call_shadow", "error_reason"]

_NO_TIMER: contextlib.nullcontext[None] = contextlib.nullcontext()  # stateless: shared


def error_reason(exc: UpstreamError) -> str:
    """The ArmResult.error word for an upstream failure."""
    return exc.reason


def arm_result(
    upstream: str,
    model: str,
    *,
    stream: bool,
    max_bytes: int,
    status: int | None = None,
    error: str | None = None,
    body: bytes = b"",
    latency_s: float | None = None,
    capture: StreamCapture | None = None,
) -> ArmResult:
    """An ArmResult without validation (every field is built here with its exact type)."""
    truncated = False
    if capture is not None:
        body, truncated = capture.body, capture.truncated
    elif len(body) > max_bytes:
        body, truncated = body[:max_bytes], True
    if error is None and status is not None and not 200 <= status < 300:
        error = "status"
    return trusted(
        ArmResult,
        upstream=upstream,
        model=model,
        stream=stream,
        status=status,
        error=error,
        body=body.decode("utf-8", "replace"),
        body_truncated=truncated,
        latency_s=latency_s,
        ttft_s=capture.ttft_s if capture is not None else None,
        itl_mean_s=capture.itl_mean_s if capture is not None else None,
        itl_max_s=capture.itl_max_s if capture is not None else None,
        prompt_tokens=None,
        completion_tokens=None,
        total_tokens=None,
    )


async def call_shadow(
    upstream: Upstream,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    model: str,
    stream: bool,
    timeout_s: float,
    max_bytes: int,
) -> ArmResult:
    """Call the shadow arm and read its whole answer within ``timeout_s``; never raises."""
    started = time.perf_counter()
    status: int | None = None
    capture = StreamCapture(max_bytes, started) if stream else None
    data = b""
    error: str | None = None
    try:
        # an HTTP upstream ends the whole call at timeout_s itself; a second timer per shadow call
        # cost about 4 % of the worker's CPU at full mirroring, so only the others get one
        timer = _NO_TIMER if getattr(upstream, "total_timeout", False) else None
        async with timer or asyncio.timeout(timeout_s):
            if capture is not None:
                async with upstream.stream(path, body, headers, timeout_s, shadow=True) as answer:
                    status = answer.status
                    async for chunk in answer.chunks():
                        capture.feed(chunk)
            else:
                response = await upstream.send("POST", path, body, headers, timeout_s, shadow=True)
                status, data = response.status, response.body
    except TimeoutError:
        error = "timeout"
    except UpstreamError as exc:
        error = error_reason(exc)
    except Overloaded:
        status, error = Overloaded.status, "overloaded"  # an in-process model's queue is full
    except asyncio.CancelledError:
        error = "cancelled"  # shutdown: record what happened, the owner is awaiting us
    return arm_result(
        upstream.name,
        model,
        stream=stream,
        max_bytes=max_bytes,
        status=status,
        error=error,
        body=data,
        latency_s=time.perf_counter() - started,
        capture=capture,
    )


class ShadowLeg:
    """The shadow copy of one request (proxy/mirror.py's ShadowCopy): one object, no closures."""

    __slots__ = (
        "_body",
        "_draft",
        "_headers",
        "_max_bytes",
        "_metrics",
        "_model",
        "_path",
        "_stream",
        "_target",
        "_timeout_s",
        "experiment",
        "upstream",
    )

    def __init__(
        self,
        target: Upstream,
        draft: PairDraft,
        metrics: ProxyMetrics,
        *,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        model: str,
        stream: bool,
        timeout_s: float,
        max_bytes: int,
    ) -> None:
        self._target = target
        self._draft = draft
        self._metrics = metrics
        self._path = path
        self._body = body
        self._headers = headers
        self._model = model
        self._stream = stream
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self.experiment = draft.experiment
        self.upstream = target.name

    async def run(self, timeout_s: float) -> ArmResult:
        return await call_shadow(
            self._target,
            self._path,
            self._body,
            self._headers,
            model=self._model,
            stream=self._stream,
            timeout_s=min(timeout_s, self._timeout_s),
            max_bytes=self._max_bytes,
        )

    def failed(self, reason: str, latency_s: float) -> ArmResult:
        return arm_result(
            self.upstream, self._model, stream=self._stream, max_bytes=self._max_bytes,
            error=reason, latency_s=latency_s,
        )  # fmt: skip

    def done(self, result: ArmResult) -> None:
        draft = self._draft
        if result.error is not None:
            self._metrics.upstream_error(
                draft.experiment, draft.served_arm.other.value, result.error
            )
        draft.shadow_done(result)
