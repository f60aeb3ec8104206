"""Leases: a worker keeps the entries it is still judging from being reclaimed by the others.

Other workers take over entries idle for ``claim_idle_seconds`` (XAUTOCLAIM), which is right
for a dead worker's entries and wrong for a live one waiting out a rate limit or a slow judge:
that would spend a second judge call on the pair. So while a batch is in flight the worker
resets the idle time of the entries it still owns (XCLAIM ... JUSTID, which does not count a
delivery) more often than ``claim_idle_seconds``. One Lua call per stream checks the owner first,
so an entry another worker has already taken over is left with it.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.redis import store_errors

__all__ = ["RENEW", "Leases"]

#: For each id owned by ARGV[2] in group ARGV[1]: reset its idle time. Returns how many.
RENEW = """
local renewed = 0
for i = 3, #ARGV do
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if owned[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""


class Leases:
    """The entries one consumer is working on, by stream; ``renew`` refreshes them in Redis."""

    def __init__(self, redis: aioredis.Redis, consumer: str) -> None:
        self._consumer = consumer
        self._script = redis.register_script(RENEW)
        self._held: dict[str, set[bytes]] = {}

    def hold(self, stream: str, entry_id: bytes) -> None:
        self._held.setdefault(stream, set()).add(entry_id)

    def release(self, stream: str, entry_ids: list[bytes]) -> None:
        held = self._held.get(stream, set())
        held.difference_update(entry_ids)
        if not held:
            self._held.pop(stream, None)

    def clear(self) -> None:
        self._held.clear()

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self._held.values())

    async def renew(self) -> int:
        """Reset the idle time of every held entry this consumer still owns; how many it did."""
        renewed = 0
        for stream, ids in list(self._held.items()):
            if not ids:
                continue
            with store_errors("judge lease"):
                result = await self._script(
                    keys=[stream], args=[keys.JUDGE_GROUP, self._consumer, *sorted(ids)]
                )
            renewed += int(result)
        return renewed
