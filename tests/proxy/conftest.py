"""Proxy fixtures: two OpenAI doubles (control, candidate) and a proxy app under uvicorn."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import openai
import pytest
import redis
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bench.servers.openai_double import OpenAIDouble
from cli.compose import proxy_app
from cli.server import serve_in_thread
from cli.settings import Settings
from tunegate import keys
from tunegate.records import Pair, decode_pair

ADMIN_TOKEN = "admin-secret-token"
READ_TOKEN = "read-only-secret-token"

_CLIENTS: dict[tuple[str, str, float], openai.OpenAI] = {}


def sdk(base_url: str, api_key: str = "k", timeout: float = 10.0) -> openai.OpenAI:
    """A sync SDK client (max_retries=0), one per base URL, closed at the end of the session."""
    key = (base_url, api_key, timeout)
    if key not in _CLIENTS:
        _CLIENTS[key] = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout
        )
    return _CLIENTS[key]


@pytest.fixture(scope="session", autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


@dataclass
class Doubles:
    control: OpenAIDouble
    candidate: OpenAIDouble
    other: OpenAIDouble
    urls: dict[str, str]

    def reset(self) -> None:
        for double in (self.control, self.candidate, self.other):
            double.reset()


@pytest.fixture(scope="session")
def doubles() -> Iterator[Doubles]:
    control, candidate, other = (OpenAIDouble(n) for n in ("control", "candidate", "other"))
    with (
        serve_in_thread(control.app) as c_url,
        serve_in_thread(candidate.app) as k_url,
        serve_in_thread(other.app) as o_url,
    ):
        found = Doubles(
            control, candidate, other, {"control": c_url, "candidate": k_url, "other": o_url}
        )
        yield found
        found.reset()


def experiment(name: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "control": {"upstream": "control"},
        "candidate": {"upstream": "candidate", "model": "cand-model"},
    }
    base.update(fields)
    return base


def build_settings(
    redis_url: str, urls: dict[str, str], experiments: list[dict[str, Any]], **proxy: Any
) -> Settings:
    upstreams: dict[str, Any] = {
        name: {"base_url": f"{url}/v1", "timeout_seconds": 5} for name, url in urls.items()
    }
    proxy_cfg: dict[str, Any] = {"state_refresh_seconds": 0.05, "shutdown_grace_seconds": 1}
    proxy_cfg.update(proxy)
    return Settings.model_validate(
        {
            "redis": {"url": redis_url},
            "upstreams": upstreams,
            "experiments": experiments,
            "proxy": proxy_cfg,
        }
    )


@dataclass
class Proxy:
    url: str
    settings: Settings
    registry: CollectorRegistry

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@contextmanager
def run_proxy(settings: Settings) -> Iterator[Proxy]:
    registry = CollectorRegistry()
    app = proxy_app(settings, registry=registry)
    with serve_in_thread(app) as url:
        yield Proxy(url, settings, registry)


DEFAULT_EXPERIMENTS = [
    experiment("exp-shadow"),
    experiment("exp-ab", stage="ab", ab_weight=0.5),
    experiment("exp-promoted", stage="promoted"),
    experiment("exp-paused", stage="paused"),
    experiment("exp-rolled", stage="rolled_back"),
    experiment("exp-user", stage="ab", ab_weight=0.5, sticky_key="user",
               category_from="metadata:category", reference_from="metadata:reference"),
]  # fmt: skip


@pytest.fixture(scope="session")
def shared_proxy(redis_server: Any, doubles: Doubles) -> Iterator[Proxy]:
    """One proxy for the tests that need no special settings (admin enabled, no passthrough).

    Its definitions are the file's (``experiments_from: file``): it lives the whole session, and
    with live definitions it would seed its six experiments again after every test's flush,
    into the Redis that the other tests' proxies read (tests/proxy/test_live_experiments.py
    exercises the default, live definitions, on proxies of its own).
    """
    settings = build_settings(
        redis_server.url, doubles.urls, DEFAULT_EXPERIMENTS, experiments_from="file"
    )
    settings.proxy.admin_token = SecretStr(ADMIN_TOKEN)
    settings.proxy.read_token = SecretStr(READ_TOKEN)
    with run_proxy(settings) as proxy:
        yield proxy


@pytest.fixture
def proxy(shared_proxy: Proxy, redis_url: str, doubles: Doubles) -> Iterator[Proxy]:
    """The shared proxy with a flushed Redis and reset doubles."""
    doubles.reset()
    yield shared_proxy
    doubles.reset()


@pytest.fixture
def proxy_factory(redis_url: str, doubles: Doubles) -> Iterator[Callable[..., Any]]:
    """Start a proxy with custom experiments / proxy settings: ``with proxy_factory(...) as p``."""
    doubles.reset()

    def factory(experiments: list[dict[str, Any]], **proxy_fields: Any) -> Any:
        return run_proxy(build_settings(redis_url, doubles.urls, experiments, **proxy_fields))

    yield factory
    doubles.reset()


def wait_for_pairs(
    url: str,
    experiment_name: str,
    count: int,
    timeout: float = 5.0,
    where: Callable[[Pair], bool] | None = None,
) -> list[Pair]:
    """The experiment's pairs (those ``where`` accepts) once ``count`` are in Redis.

    AssertionError at the deadline, naming how many there were.
    """
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            # the sync client's xrange: a list of (id, fields), never None
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]], client.xrange(keys.pairs(experiment_name))
            )
            pairs = [decode_pair(fields) for _, fields in entries]
            if where is not None:
                pairs = [p for p in pairs if where(p)]
            if len(pairs) >= count:
                return pairs
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(pairs)} of {count} pairs in {timeout}s")
            time.sleep(0.01)
    finally:
        client.close()


def wait_until(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
