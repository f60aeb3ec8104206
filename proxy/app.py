"""create_app(section, experiments, redis, upstreams) -> FastAPI: the proxy's lifespan; errors.

The lifespan enters, in order and with one AsyncExitStack: Redis, the upstream clients, the
experiment table (state refresh), the pair logger and the shadow runner; it leaves in reverse, so
running shadow copies finish (within the grace period) before the pair buffer's last flush.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from proxy import console
from proxy.asgi import read_body, send_error
from proxy.config import ProxySettings, UpstreamConfig
from proxy.errors import BadRequest, MethodNotAllowed, NotFound, ProxyError
from proxy.experiments import ExperimentTable
from proxy.heap import HeapWatch
from proxy.metrics import ProxyMetrics
from proxy.mirror import ShadowRunner
from proxy.pair_ids import PairIds
from proxy.pairlog import PairLogger
from proxy.routes import (
    admin,
    definitions,
    feedback,
    health,
    history,
    models,
    operate,
    verdict,
)
from proxy.routes.openai import OpenAIRoutes
from proxy.runtime import CorrectedNow, Runtime
from proxy.upstream import build_upstream
from tunegate.experiments import ExperimentConfig
from tunegate.redis import RedisSettings, connect
from tunegate.retention import Retention

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _error_response(exc: ProxyError) -> Response:
    content_type = getattr(exc, "content_type", "application/json")
    response = Response(exc.body(), status_code=exc.status, media_type=str(content_type))
    for name, value in exc.headers:
        response.headers[name.decode("latin-1")] = value.decode("latin-1")
    return response


def _framework_error(exc: StarletteHTTPException) -> ProxyError:
    """The OpenAI-shaped error for what the router itself answers (404, 405, ...)."""
    if exc.status_code == 404:
        return NotFound("Not found")
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return MethodNotAllowed("Method not allowed", allow=allow)
    error = BadRequest(str(exc.detail)) if exc.status_code < 500 else ProxyError(str(exc.detail))
    error.status = exc.status_code
    return error


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProxyError)
    async def proxy_error(request: Request, exc: ProxyError) -> Response:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_response(_framework_error(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> Response:
        lines = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            lines.append(f"{loc}: {error.get('msg', 'invalid')}" if loc else error.get("msg", ""))
        return _error_response(BadRequest("; ".join(lines) or "invalid request body"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = os.urandom(6).hex()
        log.error("request %s failed unexpectedly", request_id, exc_info=exc)
        error = ProxyError(f"internal error (request id {request_id})")
        return _error_response(error)


class ProxyApp(FastAPI):
    """FastAPI, with the /v1 hot path dispatched before the framework's middleware stack.

    Measured with bench/proxy: FastAPI's own layers (body limit, telemetry, error middleware,
    router) cost about a sixth of the throughput when the hot path sits behind them. Every
    other route gets a body of at most ``small_body_bytes`` (413 before it runs, so also before
    the admin API checks its token).
    """

    hot_path: OpenAIRoutes | None = None
    small_body_bytes = 64 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_path
        if scope["type"] == "http":
            if hot is not None and hot.owns(scope["path"]):
                await hot.handle(scope, receive, send)
                return
            bounded = await self._bounded(scope, receive, send)
            if bounded is None:
                return
            receive = bounded
        await super().__call__(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A ``receive`` that replays the body read here within the limit; None after a 413.

        Read whole and up front because FastAPI turns an error raised while it reads a body
        into a 400; the framework routes take small JSON bodies, so buffering costs nothing.
        """
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value.decode("latin-1")
        try:
            body = await read_body(receive, length, self.small_body_bytes)
        except ProxyError as exc:
            await send_error(send, exc)
            return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect can come now
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay


def _pair_id_secret(config: ProxySettings) -> bytes:
    """The configured pair id secret, else one for this process alone (feedback then works only
    against the replica that served the request)."""
    if config.pair_id_secret is not None:
        return config.pair_id_secret.get_secret_value().encode()
    log.warning(
        "%s is not set: pair ids are signed with a secret of this process only, so feedback"
        " reaches only the replica that served the request",
        config.pair_id_secret_env,
    )
    return os.urandom(32)


def create_app(
    config: ProxySettings,
    experiments: Sequence[ExperimentConfig],
    redis: RedisSettings,
    upstreams: Mapping[str, UpstreamConfig],
    *,
    retention: Retention | None = None,
    config_version: str = "",
    registry: CollectorRegistry | None = None,
    corrected_now: CorrectedNow | None = None,
) -> FastAPI:
    """The proxy app from its own section, the experiments and upstreams it serves, and Redis.

    Its metrics go to ``registry`` (a new one by default); ``config_version`` is what /readyz
    reports (the composition root passes a digest of the whole configuration);
    ``corrected_now`` computes the console's live judge-corrected estimate (proxy/runtime.py).
    """
    metrics = ProxyMetrics(registry if registry is not None else CollectorRegistry())
    rt = Runtime(
        config=config,
        experiments=tuple(experiments),
        upstream_configs=dict(upstreams),
        config_version=config_version,
        metrics=metrics,
        retention=retention or Retention(),
        pair_ids=PairIds(_pair_id_secret(config), window_seconds=config.feedback_window_seconds),
        corrected_now=corrected_now,
    )
    grace = config.shutdown_grace_seconds

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            rt.redis = await stack.enter_async_context(connect(redis))
            for name, upstream_cfg in rt.upstream_configs.items():
                upstream = build_upstream(name, upstream_cfg)
                stack.push_async_callback(upstream.aclose)
                rt.upstreams[name] = upstream
            rt.wire_targets()
            rt.table = await stack.enter_async_context(
                ExperimentTable(
                    rt.experiments,
                    rt.redis,
                    config.state_refresh_seconds,
                    upstreams=tuple(rt.upstream_configs),
                    on_change=lambda table: rt.table_changed(),
                    live_definitions=config.experiments_from == "redis",
                )
            )
            rt.pairlog = await stack.enter_async_context(
                PairLogger(
                    rt.redis,
                    config.pairlog,
                    metrics,
                    maxlen=rt.retention.pairs,
                    dedup_seconds=rt.retention.pair_dedup_seconds,
                    shutdown_grace_s=grace / 2,
                    wait_replicas=redis.wait_replicas,
                    wait_timeout_ms=redis.wait_timeout_ms,
                )
            )
            budgets = {e.name: e.shadow_budget for e in rt.configs()}
            rt.shadow = await stack.enter_async_context(
                ShadowRunner(config.mirror, metrics, budgets, shutdown_grace_s=grace / 2)
            )
            rt.table_changed()  # the budgets and gauges of what the table read on entering
            await stack.enter_async_context(HeapWatch(metrics))  # last: freezes what start built
            log.info(
                "proxy ready: %d experiment(s), %d upstream(s), config %s",
                len(rt.configs()),
                len(rt.upstream_configs),
                config_version,
            )
            try:
                yield
            finally:
                rt.pairlog = None  # not ready any more: /readyz and feedback answer 503
        rt.shadow, rt.table, rt.redis = None, None, None
        rt.upstreams.clear()

    app = ProxyApp(title="tunegate proxy", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.small_body_bytes = config.edge.max_small_body_bytes
    app.state.runtime = rt
    _install_error_handlers(app)
    routers = (health, models, feedback, admin, definitions, operate, history, verdict)
    for module in routers:
        app.include_router(module.router)
    console.install(app, _error_response)
    app.hot_path = OpenAIRoutes(rt)
    return app
