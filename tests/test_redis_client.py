"""tunegate/redis.py's client against a real redis-server: restarts and stalls."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from tests.conftest import RedisServer
from tests.servers.tcp_relay import TcpRelay
from tunegate.errors import StoreUnavailable
from tunegate.redis import RedisSettings, connect, store_errors


async def test_the_first_command_after_a_redis_restart_succeeds(tmp_path: Path):
    """Every pooled connection died with the old server; the next command gets a new one."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        async with connect(RedisSettings(url=SecretStr(server.url))) as client:
            await client.set("k", "1")
            server.stop()
            server.start()
            assert await client.get("k") == b"1"  # append-only: the data outlived the restart
    finally:
        server.stop()


async def test_a_stalled_redis_surfaces_after_one_timeout_and_one_send(redis_url: str):
    """A timeout is not retried: the command went out once, and the caller hears of it after one
    socket timeout (a retried timeout could write twice, and would keep /readyz waiting)."""
    url = urlsplit(redis_url)
    with TcpRelay(url.hostname or "127.0.0.1", url.port or 6379) as relay:
        settings = RedisSettings(
            url=SecretStr(f"redis://127.0.0.1:{relay.port}{url.path}"), socket_timeout_seconds=0.3
        )
        async with connect(settings) as client:
            await client.ping()  # connected: the handshake is not what stalls
            relay.hold(b"stalled-key")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable), store_errors("test"):
                await client.incr("stalled-key")
            waited = time.monotonic() - started
    assert relay.forwarded == 1
    assert waited < 1.0  # one timeout of 0.3 s, not several


async def test_a_cluster_with_no_reachable_node_is_a_store_outage():
    """The cluster client's first discovery against a dead seed raises RedisClusterException; the
    seam must name it an outage (the pair logger buffers and retries one), not a rejected batch."""
    from cli.server import free_port

    url = SecretStr(f"redis://127.0.0.1:{free_port()}/0")
    settings = RedisSettings(url=url, cluster=True, socket_timeout_seconds=0.5)
    async with connect(settings) as client:
        with pytest.raises(StoreUnavailable, match="cannot be connected"), store_errors("t"):
            await client.ping()
