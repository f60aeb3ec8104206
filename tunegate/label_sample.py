"""The label page's sample: a uniform reservoir of the judged pairs, kept as they are judged.

The judge worker offers each pair once, when it is judged (:func:`offer`); the reservoir keeps
``SIZE`` stream ids such that every pair offered so far is in it with the same probability
(Vitter's algorithm R: the n-th pair takes a random slot with probability SIZE / n). The console
draws from it (:func:`members`), so a label goes to a pair drawn uniformly over pairs, not over
time: a burst of traffic is sampled as often as its share of the pairs. That is what the
judge-corrected estimate (analysis/ppi.py) needs: the labelled pairs a random sample of the
judged ones. Each offer is one Lua call on the experiment's slot; a marker with the outcome
markers' lifetime keeps a redelivered pair from being counted twice. The random draw comes from
the caller (a script's own random numbers are not seeded per call in every Redis version).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.redis import store_errors

__all__ = ["SIZE", "members", "offer"]

SIZE = 1000  # stream ids kept: a page draws among them; a person labels far fewer

# KEYS: reservoir, marker. ARGV: stream id, size, u in [0, 1), marker ttl. 1 kept, 0 not.
_OFFER = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local size = tonumber(ARGV[2])
local slot = n - 1
if n > size then slot = math.floor(tonumber(ARGV[3]) * n) end
if slot >= size then return 0 end
redis.call('HSET', KEYS[1], 's' .. slot, ARGV[1])
return 1
"""


async def offer(
    client: aioredis.Redis,
    experiment: str,
    pair_id: str,
    stream_id: str,
    u: float,
    *,
    marker_seconds: int,
    size: int = SIZE,
) -> bool:
    """Offer one judged pair (``u`` uniform in [0, 1)); True when the reservoir kept it."""
    with store_errors("label sample"):
        kept = await client.eval(
            _OFFER,
            2,
            keys.label_sample(experiment),
            keys.label_sampled(experiment, pair_id),
            stream_id,
            str(size),
            repr(u),
            str(marker_seconds),
        )
    return bool(kept)


async def members(client: aioredis.Redis, experiment: str) -> tuple[list[str], int]:
    """The stream ids in the reservoir and how many pairs were offered to it."""
    with store_errors("label sample"):
        fields = await client.hgetall(keys.label_sample(experiment))
    raw = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in fields.items()
    }
    offered = int(raw.pop("n", "0"))
    return sorted(raw.values()), offered
