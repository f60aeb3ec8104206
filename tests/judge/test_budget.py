"""The judge budget is one for every worker: it defers calls over the limit, never drops them."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from judge.budget import Budget
from judge.config import JudgeSettings
from tunegate import keys


async def test_requests_per_minute_defers_the_call_over_the_limit(aredis: aioredis.Redis):
    budget = Budget(JudgeSettings(requests_per_minute=60, budget_burst_seconds=2), aredis)
    await asyncio.wait_for(budget.acquire("e"), 1)
    await asyncio.wait_for(budget.acquire("e"), 1)
    with pytest.raises(TimeoutError):  # the third call waits for the bucket, it is not refused
        await asyncio.wait_for(budget.acquire("e"), 0.2)
    assert budget.deferrals >= 1
    await asyncio.wait_for(budget.acquire("other"), 1)  # budgets are per experiment
    started = time.monotonic()
    await asyncio.wait_for(budget.acquire("e"), 3)  # one request a second drains in
    assert time.monotonic() - started < 2.0


async def test_two_workers_share_one_budget(aredis: aioredis.Redis):
    """Two Budget objects (two workers) on one Redis admit the burst once, not twice."""
    settings = JudgeSettings(requests_per_minute=60, budget_burst_seconds=3)
    first, second = Budget(settings, aredis), Budget(settings, aredis)
    for budget in (first, second, first):
        await asyncio.wait_for(budget.acquire("e"), 1)
    for budget in (first, second):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(budget.acquire("e"), 0.2)
    assert await aredis.ttl(keys.judge_budget("e")) > 0  # the buckets expire when idle


async def test_cost_and_tokens_count_after_the_call(aredis: aioredis.Redis):
    budget = Budget(JudgeSettings(tokens_per_minute=600, cost_per_hour_usd=36.0), aredis)
    reserved = await budget.acquire("e")
    await budget.record("e", tokens=150, cost=0.001, reserved=reserved)
    with pytest.raises(TimeoutError):  # 150 tokens is 15 s of a 10-a-second budget
        await asyncio.wait_for(budget.acquire("e"), 0.3)
    cost_only = Budget(JudgeSettings(cost_per_hour_usd=3.6), aredis)
    reserved = await cost_only.acquire("c")
    await cost_only.record("c", tokens=0, cost=0.6, reserved=reserved)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cost_only.acquire("c"), 0.3)


async def test_calls_in_flight_are_counted_from_the_last_calls_spend(aredis: aioredis.Redis):
    """After one call of 100 tokens, each next acquire reserves 100 before its call answers."""
    budget = Budget(JudgeSettings(tokens_per_minute=600, budget_burst_seconds=20), aredis)
    reserved = await budget.acquire("e")
    await budget.record("e", tokens=100, cost=0.0, reserved=reserved)  # bucket: 100 of 200
    await asyncio.wait_for(budget.acquire("e"), 1)  # below the brim: goes, bucket near 200
    await asyncio.wait_for(budget.acquire("e"), 1)  # just below the brim: goes, near 300
    with pytest.raises(TimeoutError):  # without reservations every call would go
        await asyncio.wait_for(budget.acquire("e"), 0.3)


async def test_unlimited_budget_never_waits(aredis: aioredis.Redis):
    budget = Budget(JudgeSettings(), aredis)
    assert not budget.limited
    for _ in range(1000):
        await budget.acquire("e")
    assert budget.deferrals == 0
    assert not await aredis.exists(keys.judge_budget("e"))
