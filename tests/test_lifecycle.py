"""stop_task ends a background task even when its cancellation is lost on the way."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tunegate.lifecycle import stop_task


async def test_a_task_that_absorbed_its_cancel_is_stopped_all_the_same() -> None:
    release: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    idle = asyncio.Event()  # never set: the task's "wait for more work"
    absorbed = asyncio.Event()

    async def worker() -> None:
        # Python 3.11's wait_for returns the result when the awaited future completes in the
        # same loop iteration as the cancel (gh-86296): the cancel is lost
        await asyncio.wait_for(release, 10)
        absorbed.set()
        await idle.wait()

    task = asyncio.create_task(worker(), name="worker")
    await asyncio.sleep(0)
    release.set_result(None)
    task.cancel()
    await asyncio.sleep(0.01)
    if sys.version_info < (3, 12):
        assert absorbed.is_set() and not task.done()  # the lost cancel this guards against
    async with asyncio.timeout(2):
        await stop_task(task, within_s=1.0, every_s=0.01)
    assert task.cancelled()


async def test_a_task_that_never_stops_is_given_up_on_within_the_bound() -> None:
    stubborn_for_now = True

    async def stubborn() -> None:
        while stubborn_for_now:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await stop_task(task, within_s=0.2, every_s=0.02)
    assert asyncio.get_running_loop().time() - started < 1.0 and not task.done()
    stubborn_for_now = False
    await stop_task(task)  # now it lets itself be stopped
    assert task.done()


async def test_what_the_task_raised_is_raised() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="boom"):
        await stop_task(task)
