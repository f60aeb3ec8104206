"""AsyncResource: the `async with` protocol every long-lived component shares; stop_task.

A component starts on enter (override ``__aenter__`` when it has work to do there) and drains on
exit by awaiting its ``aclose()``, which stays safe to call twice. ``stop_task`` ends a
component's background task within a bound, even when a cancellation is lost on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self

__all__ = ["AsyncResource", "stop_task"]

log = logging.getLogger(__name__)


async def stop_task(
    task: asyncio.Task[Any] | None, *, within_s: float = 5.0, every_s: float = 0.05
) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again every ``every_s``.

    Why not ``task.cancel(); await task``: a cancellation can be absorbed on the way. On Python
    3.11 ``asyncio.wait_for`` returns its result when the awaited operation completes just as
    the cancel arrives (gh-86296; redis-py sends every command through it), so the task goes on
    and, idle, waits for work forever. The proxy's shutdown then awaited its pair-log task
    forever, and the abandoned lifespan was later destroyed by the garbage collector. A task
    still running after ``within_s`` is logged and left to the event loop's end, so a shutdown
    stays bounded. What the task raised, other than its cancellation, is raised here.
    """
    if task is None:
        return
    deadline = asyncio.get_running_loop().time() + within_s
    while not task.done():
        if asyncio.get_running_loop().time() >= deadline:
            name = task.get_name()
            log.error("task %s did not stop within %.1fs of being cancelled", name, within_s)
            return
        task.cancel()
        await asyncio.wait({task}, timeout=every_s)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


class AsyncResource(ABC):
    """Base of the long-lived components: ``async with`` enters, ``aclose()`` drains."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Stop and release everything; idempotent."""
