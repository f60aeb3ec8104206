"""Outcomes: the one verdict or dead letter of each (pair, scorer, judge version), written once.

Each outcome has one marker key, ``keys.verdict_done(experiment, pair, scorer, judge_version)``,
shared by the verdict and the dead letter: the Lua call that appends either one first SETs the
marker NX, in the same atomic step, and appends nothing when the marker is already there. So a
pair reclaimed from a worker that died anywhere between its writes and its XACK never gets a
second outcome, whichever kind the first was; ``done`` reads the markers first so that a
reclaimed pair also costs no second judge call.

Both kinds are records through the codec (``v`` + ``json``): a :class:`tunegate.records.Verdict`
or a :class:`tunegate.records.DeadLetter` (the pair JSON, or the raw stream fields when they did
not decode; a bounded ``reason`` label; scorer and judge version; an error message; the judge's
last raw answer). Each stream is trimmed to its :class:`tunegate.retention.Retention` length.
"""

from __future__ import annotations

import random

import orjson
import redis.asyncio as aioredis

from tunegate import keys, label_sample
from tunegate.records import DeadLetter, Verdict, encode
from tunegate.redis import store_errors
from tunegate.retention import Retention

__all__ = ["OUTCOME_ONCE", "PAIR_SCORER", "PAIR_VERSION", "Outcomes", "fields_json"]

#: scorer and judge version of a pair-level outcome (a record that does not decode, a worker bug)
PAIR_SCORER = "-"
PAIR_VERSION = "dead"

#: SET NX the marker (its value says which outcome won) and only if it was new append the entry.
OUTCOME_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
end
return false
"""


class Outcomes:
    """Writes one worker's verdicts and dead letters through the shared markers."""

    def __init__(self, redis: aioredis.Redis, retention: Retention) -> None:
        self._redis = redis
        self._retention = retention
        self._script = redis.register_script(OUTCOME_ONCE)
        self._rng = random.Random()  # the reservoir's draws: uniform, not secret

    async def done(self, markers: list[str]) -> list[bool]:
        """Which of ``markers`` already have an outcome (one round trip; one hash tag)."""
        if not markers:
            return []
        with store_errors("judge outcome markers"):
            values = await self._redis.mget(markers)
        return [value is not None for value in values]

    async def _append(
        self, marker: str, stream: str, maxlen: int, label: str, fields: dict[str, bytes]
    ) -> bool:
        ttl = self._retention.outcome_marker_seconds
        args: list[str | int | bytes] = [label, ttl, maxlen]
        for name, value in fields.items():
            args += [name, value]
        with store_errors("judge outcome"):
            result = await self._script(keys=[marker, stream], args=args)
        return result is not None

    async def verdict(self, verdict: Verdict, marker: str) -> bool:
        """Append the verdict; False when this outcome was already written."""
        stream, maxlen = keys.verdicts(verdict.experiment), self._retention.verdicts
        return await self._append(marker, stream, maxlen, "verdict", encode(verdict))

    async def offer_label_sample(self, experiment: str, pair_id: str, stream_id: str) -> None:
        """Offer a judged pair to the console's uniform label sample (tunegate/label_sample.py)."""
        await label_sample.offer(
            self._redis,
            experiment,
            pair_id,
            stream_id,
            self._rng.random(),
            marker_seconds=self._retention.outcome_marker_seconds,
        )

    async def dead_letter(
        self,
        experiment: str,
        pair_id: str,
        pair_json: str,
        *,
        reason: str,
        scorer: str = PAIR_SCORER,
        judge_version: str = PAIR_VERSION,
        error: str = "",
        raw: str = "",
    ) -> bool:
        """Append the dead letter; False when this outcome was already written."""
        record = DeadLetter(
            experiment=experiment,
            pair_id=pair_id,
            scorer=scorer,
            judge_version=judge_version,
            reason=reason,
            error=error[:2000],
            raw=raw[:20000],
            pair=pair_json,
        )
        marker = keys.verdict_done(experiment, pair_id, scorer, judge_version)
        stream, maxlen = keys.dead(experiment), self._retention.dead_letters
        return await self._append(marker, stream, maxlen, f"dead:{reason}", encode(record))


def fields_json(fields: dict[bytes, bytes]) -> str:
    """Raw stream fields as JSON text, for an entry that did not decode as a Pair."""
    return orjson.dumps({k.decode(errors="replace"): v.decode(errors="replace")
                         for k, v in fields.items()}).decode()  # fmt: skip
