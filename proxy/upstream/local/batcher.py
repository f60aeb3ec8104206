"""Dynamic batching: collect requests for a short window, run them as one batch in a thread.

A collector task takes the first waiting job, gathers more for up to ``window_s`` (or until
``max_batch_size``), and hands the batch to ``process`` in a worker thread so torch never blocks
the event loop. At most ``max_queue`` jobs wait; one more raises ``Overloaded`` (429 with a
Retry-After estimated from recent batch times) instead of piling up.
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
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: list[J] = []
        self._closing = False
        self._batch_seconds = 0.0  # moving average of one batch's duration
        self.batches = 0  # batches started
        self.jobs = 0
        self.rejected = 0
        self.largest_batch = 0

    async def __aenter__(self) -> Self:
        self.start()
        return self

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._collect(), name=f"batcher-{self.name}")

    def submit(self, job: J) -> None:
        """Queue ``job``; raise Overloaded when ``max_queue`` jobs already wait."""
        if self._closing or self._task is None:
            raise RuntimeError(f"batcher {self.name} is not running")
        if len(self._queue) >= self.max_queue:
            self.rejected += 1
            raise Overloaded(
                f"model {self.name} is busy: {len(self._queue)} requests waiting",
                retry_after=self.retry_after(),
            )
        self._queue.append(job)
        self._wakeup.set()

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
        while self._queue:
            self._queue.popleft().fail(RuntimeError(f"model {self.name} is shutting down"))

    async def _collect(self) -> None:
        while not self._closing:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = time.monotonic() + self.window_s
            while len(self._queue) < self.max_batch_size and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
            if self._closing:
                break
            batch = [
                self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))
            ]
            await self._run([job for job in batch if not job.cancelled])

    async def _run(self, batch: list[J]) -> None:
        if not batch:
            return
        self._running = batch
        self.batches += 1
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
        elapsed = time.monotonic() - start
        self._batch_seconds = (
            elapsed if not self.batches else 0.8 * self._batch_seconds + 0.2 * elapsed
        )
        self.batches += 1
        self.jobs += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
