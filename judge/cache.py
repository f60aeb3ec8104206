"""Verdict cache: raw judge answers keyed by (judge, template, request, both responses, order).

A re-run over the same pairs is free: a hit returns the stored answer without a judge call.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import orjson
import redis.asyncio as aioredis

from judge.clients import JudgeReply
from tunegate import keys
from tunegate.redis import store_errors

__all__ = ["VerdictCache", "cache_digest"]


def cache_digest(*parts: str) -> str:
    """SHA-256 over the parts, each length-prefixed so that no two part lists collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode()
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


class VerdictCache:
    """Raw judge replies in Redis with a TTL, under the experiment's hash tag."""

    def __init__(self, redis: aioredis.Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, experiment: str, digest: str) -> JudgeReply | None:
        with store_errors("judge cache"):
            raw = await self._redis.get(keys.judge_cache(experiment, digest))
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
            return JudgeReply(**value)
        except (orjson.JSONDecodeError, TypeError):
            return None  # an unreadable entry is a miss; the new answer overwrites it

    async def put(self, experiment: str, digest: str, reply: JudgeReply) -> None:
        with store_errors("judge cache"):
            await self._redis.set(
                keys.judge_cache(experiment, digest), orjson.dumps(asdict(reply)), ex=self._ttl
            )
