"""The dead-letter stream: pairs the judge could not score, with the reason and raw judge output.

An entry is a :class:`tunegate.records.DeadLetter` through the records codec (``v`` + ``json``):
the original pair JSON (or the raw stream fields when they did not decode), a bounded ``reason``
label, the scorer, an error message and the judge's last raw answer. A marker key makes the write
idempotent per (pair, scorer).
"""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from tunegate import keys
from tunegate.records import DeadLetter, encode
from tunegate.redis import store_errors

__all__ = ["DEAD_VERSION", "WRITE_ONCE", "DeadLetters"]

DEAD_VERSION = "dead"

#: SET NX the marker, and only if it was new append the entry: a reclaimed pair never writes twice.
WRITE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
end
return false
"""

_MARKER_TTL = 30 * 24 * 3600


class DeadLetters:
    """Writes dead letters for one worker."""

    def __init__(self, redis: aioredis.Redis, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._script = redis.register_script(WRITE_ONCE)

    async def write(
        self,
        experiment: str,
        pair_id: str,
        pair_json: str,
        *,
        reason: str,
        scorer: str = "",
        error: str = "",
        raw: str = "",
    ) -> bool:
        """Append the dead letter; False when this (pair, scorer) already has one."""
        record = DeadLetter(
            experiment=experiment,
            pair_id=pair_id,
            scorer=scorer,
            reason=reason,
            error=error[:2000],
            raw=raw[:20000],
            pair=pair_json,
        )
        args: list[str | int | bytes] = [_MARKER_TTL, self._maxlen]
        for name, value in encode(record).items():
            args += [name, value]
        marker = keys.verdict_done(experiment, pair_id, scorer or "-", DEAD_VERSION)
        with store_errors("dead letters"):
            result = await self._script(keys=[marker, keys.dead(experiment)], args=args)
        return result is not None


def fields_json(fields: dict[bytes, bytes]) -> str:
    """Raw stream fields as JSON text, for an entry that did not decode as a Pair."""
    return orjson.dumps({k.decode(errors="replace"): v.decode(errors="replace")
                         for k, v in fields.items()}).decode()  # fmt: skip
