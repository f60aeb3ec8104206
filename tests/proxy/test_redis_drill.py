"""Redis stopped mid-run and restarted: users see no error; logged + dropped pairs = requests."""

from __future__ import annotations

import httpx
import redis

from tests.proxy.conftest import Proxy, experiment, sdk, wait_until
from tunegate import keys


def logged_and_dropped(proxy: Proxy) -> tuple[float, float]:
    logged = proxy.metric("tunegate_pairs_logged_total", experiment="exp")
    dropped = sum(
        proxy.metric("tunegate_pairs_dropped_total", experiment="exp", reason=r)
        for r in ("buffer_full", "shutdown", "rejected")
    )
    return logged, dropped


def test_redis_outage(proxy_factory, redis_server, redis_url: str):
    pairlog = {"buffer_size": 5, "flush_interval_ms": 5}
    with proxy_factory([experiment("exp")], pairlog=pairlog) as proxy:
        client = sdk(proxy.base_url)

        def ask() -> None:
            out = client.chat.completions.create(
                model="exp", messages=[{"role": "user", "content": "x"}]
            )
            assert out.choices[0].message.content == "Hello from control."

        for _ in range(3):
            ask()
        wait_until(lambda: logged_and_dropped(proxy) == (3, 0), what="3 pairs logged")
        redis_server.stop()
        try:
            for _ in range(12):
                ask()
            wait_until(lambda: logged_and_dropped(proxy) == (3, 7), what="7 pairs dropped")
            assert proxy.metric("tunegate_pairlog_buffer_depth") == 5
            ready = httpx.get(f"{proxy.url}/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["redis"] != "ok"
        finally:
            redis_server.start()
        wait_until(lambda: proxy.metric("tunegate_pairlog_buffer_depth") == 0, timeout=10,
                   what="the buffer to drain by itself")  # fmt: skip
        assert logged_and_dropped(proxy) == (8, 7)
        for _ in range(3):
            ask()
        wait_until(lambda: sum(logged_and_dropped(proxy)) == 18, timeout=10, what="all counted")
        logged, dropped = logged_and_dropped(proxy)
        assert (logged, dropped) == (11, 7)
        assert httpx.get(f"{proxy.url}/readyz").status_code == 200
    stored = redis.Redis.from_url(redis_url)
    assert stored.xlen(keys.pairs("exp")) == 11
    stored.close()
