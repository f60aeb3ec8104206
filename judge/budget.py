"""One judge budget for every worker: requests and tokens per minute, cost per hour, in Redis.

Each experiment's budget is a hash (``keys.judge_budget``) holding three leaky buckets that drain
at the configured rate (``requests_per_minute / 60`` per second, ...) and hold at most
``budget_burst_seconds`` of it. One Lua call, with Redis's own clock, drains the buckets and
either admits a call (counting one request and the tokens and cost it is expected to spend) or
answers how long to wait; after the call, :meth:`Budget.record` adds what it really spent beyond
that estimate. So every worker of every replica draws from the same buckets, calls in flight are
counted before they answer, and the spend over any span of time is the configured rate times the
span plus at most one burst. Over budget the worker waits; the pair stays pending with it (its
lease is renewed), never dropped and never acknowledged unjudged.

Hand-written rather than a rate-limit library: the budget has to live in the store every worker
already shares, in one slot of a Redis Cluster, and charge cost known only after the call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import redis.asyncio as aioredis

from judge.config import JudgeSettings
from tunegate import keys
from tunegate.redis import store_errors

__all__ = ["BUDGET", "Budget", "Reservation"]

#: KEYS: the budget hash. ARGV: mode ('acquire' | 'record'); then for requests, tokens and cost:
#: rate per second (0: unlimited), capacity, amount to add. Returns the seconds to wait, as text
#: ('0' when the amounts were added).
BUDGET = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local names = {'req', 'tok', 'cost'}
local levels = {}
local wait = 0
local ttl = 1
for i = 1, 3 do
  local rate = tonumber(ARGV[3 * i - 1])
  if rate > 0 then
    local cap = tonumber(ARGV[3 * i])
    local level = tonumber(redis.call('HGET', KEYS[1], names[i]) or '0')
    local at = tonumber(redis.call('HGET', KEYS[1], names[i] .. '@') or now)
    level = math.max(0, level - math.max(0, now - at) * rate)
    levels[i] = level
    if ARGV[1] == 'acquire' then
      -- a request needs room for itself; tokens and cost need the bucket below its brim
      local over = level - cap
      if i == 1 then over = level + 1 - cap end
      if over > 0 or (i > 1 and over == 0) then wait = math.max(wait, over / rate + 0.001) end
    end
    ttl = math.max(ttl, math.ceil((level + cap + tonumber(ARGV[3 * i + 1])) / rate) + 1)
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, 3 do
  if levels[i] ~= nil then
    local add = tonumber(ARGV[3 * i + 1])
    redis.call('HSET', KEYS[1], names[i], tostring(math.max(0, levels[i] + add)), names[i] .. '@',
               tostring(now))
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return '0'
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What :meth:`Budget.acquire` counted for one call before it answered."""

    tokens: float = 0.0
    cost: float = 0.0


class Budget:
    """The shared budget of every experiment this worker judges (see the module docstring)."""

    def __init__(self, settings: JudgeSettings, redis: aioredis.Redis) -> None:
        burst = settings.budget_burst_seconds
        self._rates = (
            settings.requests_per_minute / 60 if settings.requests_per_minute else 0.0,
            settings.tokens_per_minute / 60 if settings.tokens_per_minute else 0.0,
            settings.cost_per_hour_usd / 3600 if settings.cost_per_hour_usd else 0.0,
        )
        # a burst of at least one request, so a budget under one call per burst still admits
        self._caps = (max(1.0, self._rates[0] * burst), self._rates[1] * burst,
                      self._rates[2] * burst)  # fmt: skip
        self._script = redis.register_script(BUDGET)
        self._per_call: dict[str, Reservation] = {}  # the last call's spend, the next estimate
        self.deferrals = 0

    @property
    def limited(self) -> bool:
        return any(self._rates)

    async def _take(self, experiment: str, mode: str, amounts: tuple[float, ...]) -> float:
        args: list[str] = [mode]
        for rate, cap, amount in zip(self._rates, self._caps, amounts, strict=True):
            args += [repr(rate), repr(cap), repr(amount)]
        with store_errors("judge budget"):
            wait = await self._script(keys=[keys.judge_budget(experiment)], args=args)
        return float(wait)

    async def acquire(self, experiment: str) -> Reservation:
        """Wait until ``experiment`` may make one more judge call, then count it."""
        if not self.limited:
            return Reservation()
        estimate = self._per_call.get(experiment, Reservation())
        while (wait := await self._take(experiment, "acquire",
                                        (1.0, estimate.tokens, estimate.cost))) > 0:  # fmt: skip
            self.deferrals += 1
            await asyncio.sleep(min(wait, 1.0))
        return estimate

    async def record(
        self, experiment: str, tokens: int, cost: float, reserved: Reservation
    ) -> None:
        """Add what a finished call spent beyond what ``acquire`` reserved for it."""
        if not self.limited:
            return
        self._per_call[experiment] = Reservation(float(tokens), cost)
        await self._take(
            experiment, "record", (0.0, tokens - reserved.tokens, cost - reserved.cost)
        )
