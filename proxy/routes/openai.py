"""The /v1/* hot path in raw ASGI: serve one arm, mirror the other, log the pair.

Why raw ASGI and not FastAPI routes: a FastAPI handler builds a Request, runs dependency and
response machinery and (for a model-typed body) validates it, which costs more than the whole
proxying work. Here the request is parsed once (orjson), bodies stay bytes, and responses are
two ASGI messages. proxy/app.py dispatches the paths this class ``owns`` to it before FastAPI's
middleware stack; /v1/models, /v1/feedback and everything outside /v1 go to FastAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping

from proxy.asgi import (
    PAIR_ID_HEADER,
    DisconnectGuard,
    Receive,
    Scope,
    Send,
    read_body,
    send_error,
    send_response,
    start_response,
)
from proxy.errors import BadRequest, ProxyError, Unavailable, UpstreamError
from proxy.extract import experiment_facts, forward_headers, parse_body
from proxy.legs import ShadowLeg, arm_result, error_reason
from proxy.pairs import PairDraft
from proxy.routes.passthrough import passthrough
from proxy.routing import choose_arm, should_mirror
from proxy.runtime import Runtime
from proxy.streaming import EventRelay, StreamCapture
from proxy.upstream.base import Headers
from tunegate.experiments import ExperimentConfig
from tunegate.records import ArmResult, Endpoint

__all__ = ["FRAMEWORK_PATHS", "OpenAIRoutes"]

log = logging.getLogger(__name__)

_ENDPOINTS = {
    "/v1/chat/completions": Endpoint.CHAT,
    "/v1/completions": Endpoint.COMPLETIONS,
    "/v1/embeddings": Endpoint.EMBEDDINGS,
}
#: /v1 paths served by FastAPI routes rather than this middleware.
FRAMEWORK_PATHS = frozenset({"/v1/models", "/v1/feedback"})


class _Request:
    """One experiment request, parsed once."""

    __slots__ = ("body", "cfg", "draft", "endpoint", "fwd", "path", "raw", "stream")

    def __init__(
        self,
        cfg: ExperimentConfig,
        endpoint: Endpoint,
        body: dict[str, object],
        raw: bytes,
        fwd: dict[str, str],
        draft: PairDraft,
    ) -> None:
        self.cfg = cfg
        self.endpoint = endpoint
        self.body = body
        self.raw = raw
        self.fwd = fwd
        self.draft = draft
        self.path = "/" + endpoint.value.replace(".", "/")
        self.stream = body.get("stream") is True and endpoint is not Endpoint.EMBEDDINGS


class OpenAIRoutes:
    """Owns POST /v1/{chat/completions,completions,embeddings} and the passthrough of /v1/*."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @staticmethod
    def owns(path: str) -> bool:
        return path.startswith("/v1/") and path not in FRAMEWORK_PATHS

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request; every error becomes an OpenAI error body with its status."""
        try:
            await self._dispatch(scope, receive, send, scope["path"])
        except ProxyError as exc:
            await send_error(send, exc)
        except Exception as exc:  # edge of the request: log it with an id the client also sees
            request_id = os.urandom(6).hex()
            log.error("request %s failed unexpectedly", request_id, exc_info=exc)
            with contextlib.suppress(RuntimeError):  # the response may have started already
                await send_error(send, ProxyError(f"internal error (request id {request_id})"))

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        rt = self.rt
        if not rt.ready:
            raise Unavailable("the proxy is not serving (starting or shutting down)")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        endpoint = _ENDPOINTS.get(path)
        if endpoint is None or scope["method"] != "POST":
            await passthrough(rt, scope, receive, send, headers, None, None)
            return
        raw = await read_body(receive, headers.get("content-length"), rt.config.max_body_bytes)
        body = parse_body(raw, endpoint)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a non-empty string", param="model")
        assert rt.table is not None  # ready
        cfg = rt.table.config(model)
        if cfg is None:
            await passthrough(rt, scope, receive, send, headers, raw, model)
            return
        await self._experiment(receive, send, cfg, endpoint, body, raw, headers)

    async def _experiment(
        self,
        receive: Receive,
        send: Send,
        cfg: ExperimentConfig,
        endpoint: Endpoint,
        body: dict[str, object],
        raw: bytes,
        headers: Mapping[str, str],
    ) -> None:
        rt = self.rt
        assert rt.table is not None and rt.pairlog is not None  # checked by _dispatch
        assert rt.pair_ids is not None  # built with the runtime
        state = rt.table.state(cfg.name)
        facts = experiment_facts(cfg, body, headers)
        served = choose_arm(state.stage, state.ab_weight, facts.user_key_hash)
        draft = PairDraft(
            rt.pairlog.submit,
            pair_id=rt.pair_ids.new(cfg.name, served),
            experiment=cfg.name,
            endpoint=endpoint,
            request=raw,
            served_arm=served,
            facts=facts,
        )
        request = _Request(cfg, endpoint, body, raw, forward_headers(headers), draft)
        mirror = should_mirror(state.mirror_rate)
        guard = DisconnectGuard(receive)
        try:
            if request.stream:
                await self._serve_stream(send, request, guard, mirror)
            else:
                await self._serve_whole(send, request, guard, mirror)
        except asyncio.CancelledError:
            if not guard.disconnected:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            guard.close()

    def _mirror(self, request: _Request, mirror: bool) -> None:
        """Start the shadow copy for the arm not serving, or record why not."""
        draft, name = request.draft, request.cfg.name
        reason = "mirror_rate"
        if mirror:
            rt = self.rt
            target = rt.target(request.cfg, draft.served_arm.other)
            body, model = target.body(request.body, request.raw, str(request.body["model"]))
            leg = ShadowLeg(
                target.upstream, draft, rt.metrics,
                path=request.path, body=body, headers=request.fwd, model=model,
                stream=request.stream, timeout_s=target.timeout_s,
                max_bytes=rt.config.pairlog.max_body_bytes,
            )  # fmt: skip
            assert rt.shadow is not None
            refused = rt.shadow.try_start(leg, target.upstream.shadow_capacity)
            if refused is None:
                draft.expect_shadow()  # no await since try_start: the task has not run yet
                return
            reason = refused
        draft.skip_shadow(reason)
        self.rt.metrics.shadow_skipped(name, reason)

    def _finish(
        self,
        request: _Request,
        result: ArmResult,
        status: int,
        skip: str | None = None,
    ) -> None:
        """Record the served leg: metrics, and the pair's served half."""
        metrics, draft = self.rt.metrics, request.draft
        name, arm = draft.experiment, draft.served_arm.value
        if skip is not None:
            draft.skip_shadow(skip)
            metrics.shadow_skipped(name, skip)
        metrics.served(name, arm, request.endpoint.value, status, result.latency_s or 0.0)
        if result.ttft_s is not None:
            metrics.ttft.labels(name, arm).observe(result.ttft_s)
        if result.error is not None:
            metrics.upstream_error(name, arm, result.error)
        draft.served_done(result)

    async def _serve_whole(
        self, send: Send, request: _Request, guard: DisconnectGuard, mirror: bool
    ) -> None:
        draft = request.draft
        target = self.rt.target(request.cfg, draft.served_arm)
        body, model = target.body(request.body, request.raw, str(request.body["model"]))
        max_bytes = self.rt.config.pairlog.max_body_bytes
        pair_header = [(PAIR_ID_HEADER, draft.id.encode())]
        started = time.perf_counter()
        try:
            response = await target.upstream.send(
                "POST", request.path, body, request.fwd, target.timeout_s
            )
        except UpstreamError as exc:
            result = arm_result(
                target.upstream.name, model, stream=False, max_bytes=max_bytes,
                error=error_reason(exc), latency_s=time.perf_counter() - started,
            )  # fmt: skip
            self._finish(request, result, exc.status, skip="served_failed")
            guard.close()
            await send_error(send, exc, pair_header)
            return
        except asyncio.CancelledError:
            if guard.disconnected:
                result = arm_result(
                    target.upstream.name, model, stream=False, max_bytes=max_bytes,
                    error="cancelled", latency_s=time.perf_counter() - started,
                )  # fmt: skip
                self._finish(request, result, 499, skip="client_disconnected")
            raise
        result = arm_result(
            target.upstream.name, model, stream=False, max_bytes=max_bytes,
            status=response.status, body=response.body, latency_s=time.perf_counter() - started,
        )  # fmt: skip
        self._mirror(request, mirror)
        guard.close()
        await send_response(
            send, response.status, response.body, response.content_type.encode(),
            [*response.headers, *pair_header],
        )  # fmt: skip
        self._finish(request, result, response.status)

    async def _serve_stream(
        self, send: Send, request: _Request, guard: DisconnectGuard, mirror: bool
    ) -> None:
        draft = request.draft
        target = self.rt.target(request.cfg, draft.served_arm)
        body, model = target.body(request.body, request.raw, str(request.body["model"]))
        capture = StreamCapture(self.rt.config.pairlog.max_body_bytes)
        pair_header = (PAIR_ID_HEADER, draft.id.encode())
        status: int | None = None
        content_type = b"application/json"
        relayed: Headers = []
        relay: EventRelay | None = None
        failure: UpstreamError | None = None
        try:
            async with target.upstream.stream(
                request.path, body, request.fwd, target.timeout_s
            ) as answer:
                status, content_type = answer.status, answer.content_type.encode()
                relayed = answer.headers
                if 200 <= status < 300:
                    await start_response(
                        send, status, content_type,
                        [*relayed, pair_header, (b"cache-control", b"no-cache")],
                    )  # fmt: skip
                    relay = EventRelay(send)
                    self._mirror(request, mirror)
                    async for chunk in answer.chunks():
                        capture.feed(chunk)
                        await relay.forward(chunk)
                else:  # an error status: relay it whole, as a non-streamed error body
                    async for chunk in answer.chunks():
                        capture.feed(chunk)
                    self._mirror(request, mirror)
        except UpstreamError as exc:
            failure = exc
            if relay is None:
                result = self._stream_result(
                    target.upstream.name, model, capture, status, exc.reason
                )
                self._finish(request, result, exc.status, skip="served_failed")
                guard.close()
                await send_error(send, exc, [pair_header])
                return
        except asyncio.CancelledError:
            if guard.disconnected:
                result = self._stream_result(
                    target.upstream.name, model, capture, status, "cancelled"
                )
                skip = None if relay is not None else "client_disconnected"
                self._finish(request, result, 499, skip=skip)
            raise
        guard.close()
        error = None if failure is None else failure.reason
        result = self._stream_result(target.upstream.name, model, capture, status, error)
        if relay is None:
            assert status is not None
            await send_response(send, status, capture.body, content_type, [*relayed, pair_header])
        elif failure is None:
            await relay.finish()
        else:  # mid-stream: the client's SDK raises on an error event in OpenAI's shape
            await relay.fail(failure)
        self._finish(request, result, status or 502)

    @staticmethod
    def _stream_result(
        upstream: str, model: str, capture: StreamCapture, status: int | None, error: str | None
    ) -> ArmResult:
        latency = time.perf_counter() - capture.started_at
        return arm_result(
            upstream, model, stream=True, max_bytes=capture.max_bytes,
            status=status, error=error, latency_s=latency, capture=capture,
        )  # fmt: skip
