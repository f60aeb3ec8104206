"""One benchmark target process: tunegate (one uvicorn worker, uvloop + httptools) for a mode.

Run as ``python -m bench.proxy.target MODE UPSTREAM_URL PORT REDIS_URL [CANDIDATE_URL]``
(the candidate upstream is UPSTREAM_URL unless given: bench/proxy/cost.py points it at a closed
port to count what a down candidate costs); modes:

- ``pass``: no experiment, the request is relayed to the passthrough upstream (no pair);
- ``off``: an experiment with mirroring off (the served leg's pair is still logged);
- ``on``: an experiment with 100 % mirroring and pair logging.

A mode ending in ``-aiohttp`` (``off-aiohttp``, ``on-aiohttp``) makes every upstream use the
aiohttp client even for http:// URLs: the baseline for the lean client (proxy/upstream/lean.py).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from cli.compose import proxy_app
from cli.settings import Settings
from proxy.http_protocol import http_protocol

__all__ = ["MODES", "settings_for"]

MODES = ("pass", "off", "on")


def settings_for(
    mode: str, upstream_url: str, port: int, redis_url: str, candidate_url: str | None = None
) -> Settings:
    experiments = []
    if mode in ("off", "on"):
        experiments.append(
            {
                "name": "bench",
                "control": {"upstream": "control"},
                "candidate": {"upstream": "candidate", "model": "bench-ft"},
                "mirror_rate": 1.0 if mode == "on" else 0.0,
            }
        )
    return Settings.model_validate(
        {
            "log_level": "warning",
            "redis": {"url": redis_url},
            "upstreams": {
                # 100 % mirroring at any concurrency: the shadow pool as large as the served one
                "control": {
                    "base_url": upstream_url,
                    "max_connections": 512,
                    "shadow_max_connections": 512,
                },
                "candidate": {
                    "base_url": candidate_url or upstream_url,
                    "max_connections": 512,
                    "shadow_max_connections": 512,
                },
            },
            "experiments": experiments,
            "proxy": {
                "port": port,
                "passthrough_upstream": "control",
                # each target its own experiment definition: the benchmark's targets share one
                # Redis, where live definitions would make every replica serve the last seeded
                "experiments_from": "file",
                "mirror": {"max_inflight": 1024},
                "pairlog": {"buffer_size": 50_000},
            },
            "retention": {"pairs": 20_000},
        }
    )


def _force_aiohttp() -> None:
    import proxy.app
    from proxy.config import UpstreamConfig
    from proxy.upstream import Upstream
    from proxy.upstream.http import HttpUpstream

    def build(name: str, cfg: UpstreamConfig) -> Upstream:
        return HttpUpstream(name, cfg)

    setattr(proxy.app, "build_upstream", build)  # noqa: B010  # bench-only baseline switch


def main(argv: list[str]) -> None:
    mode, upstream_url, port, redis_url = argv[0], argv[1], int(argv[2]), argv[3]
    logging.basicConfig(level=logging.WARNING)
    mode, _, client = mode.partition("-")
    if client == "aiohttp":
        _force_aiohttp()
    candidate_url = argv[4] if len(argv) > 4 else None
    settings = settings_for(mode, upstream_url, port, redis_url, candidate_url)
    uvicorn.run(
        proxy_app(settings),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=http_protocol(),  # httptools, head and body in one write
        log_level="warning",
        access_log=False,
        server_header=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
