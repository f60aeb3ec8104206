"""PairLogger: a bounded in-memory buffer of Pair records, written to Redis in pipelined batches.

``submit`` never blocks and never fails: when the buffer is full the pair is dropped and counted.
A background task drains the buffer every ``flush_interval_ms`` (or sooner when a batch fills)
with one pipelined round trip per batch: XADD with approximate MAXLEN to the experiment's pairs
stream plus a short-lived ``served`` key (the feedback endpoint's lookup). When Redis is down the
batch stays in the buffer and the task retries with backoff, so logging resumes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import redis.asyncio as aioredis

from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from tunegate import keys
from tunegate.errors import StoreUnavailable
from tunegate.lifecycle import AsyncResource
from tunegate.records import Pair, encode
from tunegate.redis import store_errors

__all__ = ["PairLogger"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 1.0


class PairLogger(AsyncResource):
    """Buffers pairs and writes them to Redis off the request path."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: PairLogSettings,
        metrics: ProxyMetrics,
        *,
        maxlen: int,
        shutdown_grace_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._settings = settings
        self._metrics = metrics
        self._grace = shutdown_grace_s
        self._buffer: deque[Pair] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.redis_ok = True

    async def __aenter__(self) -> PairLogger:
        self._task = asyncio.create_task(self._run(), name="pairlog")
        return self

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def submit(self, pair: Pair) -> None:
        """Queue one pair; drops and counts it when the buffer is full or the logger closed."""
        if self._closing:
            self._metrics.pairs_dropped.labels(pair.experiment, "shutdown").inc()
            return
        if len(self._buffer) >= self._settings.buffer_size:
            self._metrics.pairs_dropped.labels(pair.experiment, "buffer_full").inc()
            return
        self._buffer.append(pair)
        self._metrics.buffer_depth.set(len(self._buffer))
        if not self._wake.is_set():
            self._wake.set()

    async def _run(self) -> None:
        interval = self._settings.flush_interval_ms / 1000
        backoff = interval
        while True:
            await self._wake.wait()
            await asyncio.sleep(interval)  # gather a batch: one round trip for many pairs
            self._wake.clear()
            while self._buffer:
                try:
                    await self._flush_batch()
                except StoreUnavailable as exc:
                    if self.redis_ok:
                        log.warning("pair log: redis unavailable, buffering (%s)", exc)
                    self.redis_ok = False
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                except Exception:  # edge of the task: drop the batch, count it, keep the loop alive
                    log.exception("pair log: unexpected error writing a batch; dropping it")
                    self._drop_batch("rejected")
                    continue
                if not self.redis_ok:
                    log.info("pair log: redis is back, logging resumed")
                self.redis_ok = True
                backoff = interval

    async def _flush_batch(self) -> None:
        batch = [self._buffer[i] for i in range(min(self._settings.batch_size, len(self._buffer)))]
        ttl = self._settings.served_ttl_seconds
        maxlen = self._maxlen
        with store_errors("pair log"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for pair in batch:
                    fields = encode(pair)
                    key = keys.pairs(pair.experiment)
                    # redis-py types the fields dict invariantly; str -> bytes is what it accepts
                    pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
                    pipe.set(keys.served(pair.experiment, pair.id), pair.served_arm.value, ex=ttl)
                results = await pipe.execute(raise_on_error=False)
        for _ in batch:
            self._buffer.popleft()
        self._metrics.buffer_depth.set(len(self._buffer))
        logged: dict[str, int] = {}
        for i, pair in enumerate(batch):
            if isinstance(results[2 * i], Exception):
                log.error("pair log: redis rejected pair %s: %s", pair.id, results[2 * i])
                self._metrics.pairs_dropped.labels(pair.experiment, "rejected").inc()
            else:
                logged[pair.experiment] = logged.get(pair.experiment, 0) + 1
        for experiment, count in logged.items():
            self._metrics.pairs_logged.labels(experiment).inc(count)

    def _drop_batch(self, reason: str) -> None:
        for _ in range(min(self._settings.batch_size, len(self._buffer))):
            pair = self._buffer.popleft()
            self._metrics.pairs_dropped.labels(pair.experiment, reason).inc()
        self._metrics.buffer_depth.set(len(self._buffer))

    async def aclose(self) -> None:
        """Stop the loop, flush what Redis takes within the grace period, count the rest."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError, StoreUnavailable):
            async with asyncio.timeout(self._grace):
                while self._buffer:
                    await self._flush_batch()
        while self._buffer:
            pair = self._buffer.popleft()
            self._metrics.pairs_dropped.labels(pair.experiment, "shutdown").inc()
        self._metrics.buffer_depth.set(0)
