"""Builds each plane from the root settings: the one place that hands a plane its own section.

Every plane takes its section plus the experiments (and Redis), never the root Settings, so it can
be built and tested alone; the commands, the demo, the tests and the benchmarks compose them here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli.settings import Settings

if TYPE_CHECKING:  # the planes are imported lazily: `tunegate --help` loads none of them
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

__all__ = ["proxy_app"]


def proxy_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> FastAPI:
    """The proxy app for the root settings (``registry`` gets its metrics)."""
    from proxy.app import create_app

    try:  # the console's live corrected estimate needs the analysis plane (numpy, scipy)
        from analysis.corrected_now import corrected_now
    except ImportError:  # an install without it: the console shows the last decision's figure
        corrected_now = None  # type: ignore[assignment]  # the optional plane is absent

    return create_app(
        settings.proxy,
        settings.experiments,
        settings.redis,
        settings.upstreams,
        retention=settings.retention,
        config_version=settings.config_version,
        registry=registry,
        corrected_now=corrected_now,
    )
