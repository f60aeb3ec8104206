"""Leadership: one holder of a named Redis lease among several replicas, with a fencing token.

Several ``tunegate decide --all --loop`` replicas run; only the holder of the lease decides.
The lease is a key set with NX and a time to live; its holder renews it every third of that time
through a Lua compare (only the holder's own value is extended). Each acquisition increments a
counter: that number is the fencing token. A controller passes it to
:func:`tunegate.state.write_state`, which refuses a token lower than the highest one the
experiment has seen, so a leader that paused past its lease (and was replaced) cannot apply a
decision after the new leader has started (Kleppmann's fencing, the lease alone does not do it).

Hand-written rather than a library lock: redis-py's ``Lock`` has no fencing token, and the
token is the point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.lifecycle import AsyncResource, stop_task
from tunegate.redis import store_errors

__all__ = ["Leadership", "holder_id"]

log = logging.getLogger(__name__)

# ARGV: holder id, ttl ms. Returns the token held (new or renewed), or 0 when another holds it.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
  local sep = string.find(held, ':[^:]*$')
  if string.sub(held, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(held, sep + 1))
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

# ARGV: the exact value held ("holder:token"), ttl ms. 1 when renewed, 0 when lost.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def holder_id() -> str:
    """This process: host name, pid and a random suffix (a restarted pid is a new holder)."""
    return f"{socket.gethostname()}/{os.getpid()}/{os.urandom(3).hex()}"


class Leadership(AsyncResource):
    """Holds the lease ``name`` whenever it can; ``token`` is its fencing token while held.

    A background task tries to acquire (or renews) every ``ttl_s / 3``; when a renewal fails or
    Redis does not answer, ``token`` becomes None at once. ``changed`` is set on every change.
    """

    def __init__(
        self, client: aioredis.Redis, name: str, ttl_s: float, holder: str | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.name = name
        self.holder = holder or holder_id()
        self.token: int | None = None
        self.changed = asyncio.Event()
        self._client = client
        self.ttl_s = ttl_s
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._task: asyncio.Task[None] | None = None

    async def attempt(self) -> int | None:
        """Acquire or renew once; the token held afterwards (None: another replica leads)."""
        before = self.token
        try:
            with store_errors("leader lease"):
                if self.token is None:
                    got = await self._client.eval(
                        _ACQUIRE, 2, keys.lease(self.name), keys.lease_epoch(self.name),
                        self.holder, str(self._ttl_ms),
                    )  # fmt: skip
                    self.token = int(got) or None
                else:
                    kept = await self._client.eval(
                        _RENEW, 1, keys.lease(self.name),
                        f"{self.holder}:{self.token}", str(self._ttl_ms),
                    )  # fmt: skip
                    self.token = self.token if kept else None
        except Exception:  # edge of the loop: any failure means "not leader"
            log.warning("leader lease %s: redis did not answer; not leading", self.name)
            self.token = None
        if self.token != before:
            now = f"token {self.token}" if self.token else "lost"
            log.info("leader lease %s: %s", self.name, now)
            self.changed.set()
        return self.token

    async def _run(self) -> None:
        while True:
            await self.attempt()
            await asyncio.sleep(self._ttl_ms / 3000)

    async def __aenter__(self) -> Leadership:
        await self.attempt()
        self._task = asyncio.create_task(self._run(), name=f"lease-{self.name}")
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        if self.token is not None:
            with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                await self._client.eval(
                    _RELEASE, 1, keys.lease(self.name), f"{self.holder}:{self.token}"
                )
            self.token = None
