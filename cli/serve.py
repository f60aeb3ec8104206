"""`tunegate serve`: run the proxy (one uvicorn worker; uvloop and httptools when installed).

With no Redis URL configured it starts an embedded Redis with its data in ``redis.data_dir`` and
says so in the log. Exit codes: 0 after a clean shutdown (SIGTERM or SIGINT, once the running
requests and the pair buffer are drained), 2 for a usage or config error.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import resource
import signal
from types import FrameType

from cli.common import EXIT_OK, add_common, settings_from_args, setup_logging

__all__ = ["register", "run"]

log = logging.getLogger("tunegate.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the OpenAI-compatible shadow / A-B proxy")
    parser.add_argument(
        "--host", default=None,
        help="listen address (proxy.host, TUNEGATE_PROXY__HOST; default 127.0.0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=int, default=None,
        help="listen port (proxy.port, TUNEGATE_PROXY__PORT; default 8080)",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=None, metavar="URL",
        help="Redis URL (redis.url, TUNEGATE_REDIS__URL); none: start an embedded Redis",
    )  # fmt: skip
    parser.add_argument(
        "--redis-data-dir", default=None, metavar="DIR",
        help="embedded Redis data directory (redis.data_dir, TUNEGATE_REDIS__DATA_DIR)",
    )  # fmt: skip
    parser.add_argument(
        "--passthrough-upstream", default=None, metavar="NAME",
        help="upstream for unknown models and other /v1 paths (proxy.passthrough_upstream)",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default=None, choices=["debug", "info", "warning", "error"],
        help="log level (log_level, TUNEGATE_LOG_LEVEL)",
    )  # fmt: skip
    add_common(parser)
    parser.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    proxy = {
        k: v
        for k, v in (
            ("host", args.host),
            ("port", args.port),
            ("passthrough_upstream", args.passthrough_upstream),
        )
        if v is not None
    }
    redis = {k: v for k, v in (("url", args.redis_url), ("data_dir", args.redis_data_dir)) if v}
    overrides: dict[str, object] = {"log_level": args.log_level}
    if proxy:
        overrides["proxy"] = proxy
    if redis:
        overrides["redis"] = redis
    return overrides


def _raise_file_limit(wanted: int) -> None:
    """Lift the soft open-files limit towards ``wanted`` (client sockets plus upstream ones)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _exit_quietly_after_uvicorn() -> None:
    """Let a SIGTERM/SIGINT end in exit 0: uvicorn re-raises the signal it caught after its
    graceful shutdown, to the handler that was installed before it started. That handler is
    this no-op (not the default one, which would kill the process with the signal).
    """

    def drained(signum: int, frame: FrameType | None) -> None:
        log.info("shut down on signal %d", signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, drained)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, **_overrides(args))
    setup_logging(settings.log_level)
    import uvicorn

    from cli.compose import proxy_app
    from proxy.http_protocol import http_protocol

    if settings.redis.url is None:
        log.info(
            "no Redis URL configured: using an embedded Redis with its data in %s",
            settings.redis.data_dir.resolve(),
        )
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    # httptools with the response head and body written in one send (proxy/http_protocol.py)
    edge = settings.proxy.edge
    http = http_protocol(edge)
    _raise_file_limit(edge.max_connections * 3 + 1024)
    log.info(
        "serving on http://%s:%d (%s, %s)",
        settings.proxy.host,
        settings.proxy.port,
        loop,
        http if isinstance(http, str) else "httptools, hardened, coalesced writes",
    )
    app = proxy_app(settings)
    _exit_quietly_after_uvicorn()
    uvicorn.run(
        app,
        host=settings.proxy.host,
        port=settings.proxy.port,
        loop=loop,
        http=http,
        ws="none",  # no WebSocket routes: an Upgrade is answered as plain HTTP, within the limits
        log_level=settings.log_level,
        access_log=False,
        server_header=False,  # saves bytes and a header check on every response
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(settings.proxy.shutdown_grace_seconds)),
        timeout_keep_alive=edge.keepalive_timeout_seconds,  # type: ignore[arg-type]  # float ok
        h11_max_incomplete_event_size=edge.max_head_bytes,  # the h11 fallback's head limit
    )
    return EXIT_OK
