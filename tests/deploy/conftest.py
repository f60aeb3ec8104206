"""Fixtures of the deployment tests: the synthetic exporter and a real Prometheus scraping it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cli.server import serve_in_thread
from tests.deploy.exporter import registry
from tests.deploy.prometheus import PrometheusServer
from tests.deploy.promql import ALERTS_FILE

T = TypeVar("T")


def exporter_app() -> Starlette:
    metrics = registry()

    async def scrape(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape)])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping the synthetic exporter every second, with the chart's rules loaded."""
    with serve_in_thread(exporter_app()) as exporter_url:
        target = exporter_url.removeprefix("http://")
        workdir = tmp_path_factory.mktemp("prometheus")
        with PrometheusServer(workdir, [target], [ALERTS_FILE]) as server:
            yield server


def eventually(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.25) -> T:
    """Call ``check`` until it returns without AssertionError, or re-raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)
