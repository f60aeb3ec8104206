"""The judge budget defers calls over the limit; it never drops them."""

from __future__ import annotations

import asyncio

import pytest

from judge.budget import Budget
from judge.config import JudgeSettings


async def test_requests_per_minute_defers_the_call_over_the_limit():
    budget = Budget(JudgeSettings(requests_per_minute=2))
    await asyncio.wait_for(budget.acquire("e"), 1)
    await asyncio.wait_for(budget.acquire("e"), 1)
    with pytest.raises(TimeoutError):  # the third call waits for the window, it is not refused
        await asyncio.wait_for(budget.acquire("e"), 0.2)
    assert budget.deferrals >= 1
    await asyncio.wait_for(budget.acquire("other"), 1)  # budgets are per experiment


async def test_cost_and_tokens_count_after_the_call():
    budget = Budget(JudgeSettings(tokens_per_minute=100, cost_per_hour_usd=1.0))
    await budget.acquire("e")
    budget.record("e", tokens=150, cost=0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(budget.acquire("e"), 0.2)
    cost_only = Budget(JudgeSettings(cost_per_hour_usd=0.5))
    await cost_only.acquire("e")
    cost_only.record("e", tokens=0, cost=0.6)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cost_only.acquire("e"), 0.2)


async def test_unlimited_budget_never_waits():
    budget = Budget(JudgeSettings())
    assert not budget.limited
    for _ in range(1000):
        await budget.acquire("e")
    assert budget.deferrals == 0
