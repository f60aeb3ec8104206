"""PairLogger: a bounded in-memory buffer of Pair records, written to Redis in pipelined batches.

``submit`` never blocks and never fails: when the buffer is full the *oldest* pair is dropped and
counted, so after a Redis outage the pairs of the recovered traffic always get in (none of them is
refused while the backlog drains). A background task drains the buffer every
``flush_interval_ms`` (or sooner when a batch fills) with one pipelined round trip per batch, and
with batches of up to ``_DRAIN_FACTOR`` times the size while a backlog remains. When Redis is
down the batch stays in the buffer and the task retries with backoff, so logging resumes by itself.

Idempotent by pair id, end to end: each pair is written by one Lua script that sets the pair's
short-lived ``served`` key (the feedback endpoint's lookup) with ``NX`` and appends the stream
entry only when that set succeeded, atomically. A batch that Redis executed but whose reply was
lost (a timeout) is sent again; its pairs find their key set and add nothing, so no reader ever
sees a pair twice and ``tunegate_pairs_logged_total`` stays exact. The dedup window is
``served_ttl_seconds``; the key and the stream share the experiment's hash tag (Redis Cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from proxy.config import PairLogSettings
from proxy.metrics import ProxyMetrics
from tunegate import keys
from tunegate.errors import StoreUnavailable
from tunegate.lifecycle import AsyncResource
from tunegate.records import Pair, encode
from tunegate.redis import store_errors

__all__ = ["WRITE_PAIR", "PairLogger"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 1.0
_DRAIN_FACTOR = 4  # a backlog drains in batches this many times batch_size

#: KEYS: the pairs stream, the pair's served key. ARGV: served arm, ttl, maxlen, v, json.
WRITE_PAIR = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'v', ARGV[4], 'json', ARGV[5])
end
return false
"""


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
        self._sha: str | None = None  # WRITE_PAIR, loaded into Redis's script cache
        self.redis_ok = True

    async def __aenter__(self) -> PairLogger:
        self._task = asyncio.create_task(self._run(), name="pairlog")
        return self

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def submit(self, pair: Pair) -> None:
        """Queue one pair; when the buffer is full the oldest is dropped (and counted)."""
        if self._closing:
            self._metrics.pairs_dropped.labels(pair.experiment, "shutdown").inc()
            return
        if len(self._buffer) >= self._settings.buffer_size:
            oldest = self._buffer.popleft()
            self._metrics.pairs_dropped.labels(oldest.experiment, "buffer_full").inc()
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
        size = self._settings.batch_size
        if len(self._buffer) > size:  # a backlog (after an outage): fewer, larger round trips
            size *= _DRAIN_FACTOR
        batch = [self._buffer[i] for i in range(min(size, len(self._buffer)))]
        with store_errors("pair log"):
            results = await self._write(batch)
            if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted: reload
                self._sha = None
                results = await self._write(batch)  # safe: the script is idempotent
        for _ in batch:
            self._buffer.popleft()
        self._metrics.buffer_depth.set(len(self._buffer))
        logged: dict[str, int] = {}
        for pair, result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                log.error("pair log: redis rejected pair %s: %s", pair.id, result)
                self._metrics.pairs_dropped.labels(pair.experiment, "rejected").inc()
                continue
            if result is None:  # written by an earlier try whose reply was lost
                self._metrics.pairs_rewritten.labels(pair.experiment).inc()
            logged[pair.experiment] = logged.get(pair.experiment, 0) + 1
        for experiment, count in logged.items():
            self._metrics.pairs_logged.labels(experiment).inc(count)

    async def _write(self, batch: list[Pair]) -> list[object]:
        """One pipelined round trip: WRITE_PAIR for each pair; per-pair results or errors."""
        if self._sha is None:
            self._sha = await self._redis.script_load(WRITE_PAIR)
        sha = self._sha
        ttl = self._settings.served_ttl_seconds
        maxlen = self._maxlen
        async with self._redis.pipeline(transaction=False) as pipe:
            for pair in batch:
                fields = encode(pair)
                pipe.evalsha(
                    sha,
                    2,
                    keys.pairs(pair.experiment),
                    keys.served(pair.experiment, pair.id),
                    pair.served_arm.value,
                    ttl,
                    maxlen,
                    fields["v"],
                    fields["json"],
                )
            results: list[object] = await pipe.execute(raise_on_error=False)
        return results

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
