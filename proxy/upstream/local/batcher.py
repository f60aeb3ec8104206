"""Dynamic batching: collect requests for a short window, run them as one batch in a thread.

A collector task takes the first waiting job, gathers more for up to ``window_s`` (or until
``max_batch_size``), and hands the batch to ``process`` in a worker thread so torch never blocks
the event loop. At most ``max_queue`` jobs wait; one more raises ``Overloaded`` (429 with a
Retry-After estimated from recent batch times) instead of piling up.

Served work first: shadow copies wait in a queue of their own (also at most ``max_queue``), a
batch takes them only for the places served jobs leave, and a served job that arrives while
shadow jobs run preempts them (they fail with ``Overloaded``, their rows leave the batch at the
next step), so a served request never waits behind a shadow copy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Generic, Protocol, Self, TypeVar

from proxy.errors import Overloaded
from tunegate.lifecycle import AsyncResource

__all__ = ["BatchJob", "Batcher"]

log = logging.getLogger(__name__)


class BatchJob(Protocol):
    """What the batcher needs from a job: whether its caller left, and how to fail it."""

    @property
    def cancelled(self) -> bool: ...

    def cancel(self) -> None: ...

    def fail(self, exc: BaseException) -> None: ...


J = TypeVar("J", bound=BatchJob)


class Batcher(Generic[J], AsyncResource):
    """Bounded queue + collector task + one worker thread; use with ``async with``."""

    def __init__(
        self,
        name: str,
        process: Callable[[list[J]], None],
        *,
        max_batch_size: int,
        window_s: float,
        max_queue: int,
    ) -> None:
        self.name = name
        self._process = process
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.max_queue = max_queue
        self._queue: collections.deque[J] = collections.deque()
        self._shadow: collections.deque[J] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: list[J] = []
        self._closing = False
        self._batch_seconds = 0.0  # moving average of one batch's duration
        self.batches = 0  # batches started
        self.jobs = 0
        self.rejected = 0
        self.preempted = 0  # shadow jobs stopped to make way for served ones
        self.largest_batch = 0
        self._shadow_running: list[J] = []

    async def __aenter__(self) -> Self:
        self.start()
        return self

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._collect(), name=f"batcher-{self.name}")

    def submit(self, job: J, *, shadow: bool = False) -> None:
        """Queue ``job``; raise Overloaded when ``max_queue`` jobs already wait in its queue."""
        if self._closing or self._task is None:
            raise RuntimeError(f"batcher {self.name} is not running")
        queue = self._shadow if shadow else self._queue
        if len(queue) >= self.max_queue:
            self.rejected += 1
            raise Overloaded(
                f"model {self.name} is busy: {len(queue)} requests waiting",
                retry_after=self.retry_after(),
            )
        queue.append(job)
        if not shadow:
            self._preempt()
        self._wakeup.set()

    def _preempt(self) -> None:
        """Stop the running shadow jobs: a served job is waiting for the worker."""
        for job in self._shadow_running:
            if not job.cancelled:
                job.fail(Overloaded(f"model {self.name}: shadow copy preempted by served work"))
                job.cancel()
                self.preempted += 1
        self._shadow_running = []

    def retry_after(self) -> float:
        """Seconds until the waiting jobs have likely run (at least 1)."""
        batches = math.ceil((len(self._queue) + 1) / self.max_batch_size) + 1
        return float(max(1, math.ceil(batches * self._batch_seconds)))

    async def aclose(self) -> None:
        """Stop taking jobs, cancel the running batch's jobs, fail the waiting ones."""
        self._closing = True
        for job in self._running:
            job.cancel()
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        for queue in (self._queue, self._shadow):
            while queue:
                queue.popleft().fail(RuntimeError(f"model {self.name} is shutting down"))

    def _waiting(self) -> int:
        return len(self._queue) + len(self._shadow)

    async def _collect(self) -> None:
        while not self._closing:
            if not self._waiting():
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = time.monotonic() + self.window_s
            while self._waiting() < self.max_batch_size and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
            if self._closing:
                break
            served = [
                self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))
            ]
            room = self.max_batch_size - len(served)
            shadow = [self._shadow.popleft() for _ in range(min(room, len(self._shadow)))]
            self._shadow_running = [job for job in shadow if not job.cancelled]
            await self._run([job for job in served if not job.cancelled] + self._shadow_running)

    async def _run(self, batch: list[J]) -> None:
        if not batch:
            return
        self._running = batch
        self.batches += 1  # counted before it runs: its callers may read these as it ends
        self.jobs += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        start = time.monotonic()
        try:
            await asyncio.to_thread(self._process, batch)
        except Exception as exc:  # the edge of the worker loop: fail the batch, keep serving
            log.exception("batch of %d on %s failed", len(batch), self.name)
            for job in batch:
                job.fail(exc)
        finally:
            self._running = []
            self._shadow_running = []
        elapsed = time.monotonic() - start
        self._batch_seconds = (
            elapsed if self.batches == 1 else 0.8 * self._batch_seconds + 0.2 * elapsed
        )
