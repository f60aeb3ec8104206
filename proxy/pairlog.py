"""PairLogger: a bounded in-memory buffer of Pair records, written to Redis in pipelined batches.

``submit`` never blocks and never fails: when the buffer is full the *oldest* pair is dropped and
counted, so after a Redis outage the pairs of the recovered traffic always get in (none of them is
refused while the backlog drains). A background task drains the buffer every
``flush_interval_ms`` (or sooner when a batch fills) with one pipelined round trip per batch, and
with batches of up to ``_DRAIN_FACTOR`` times the size while a backlog remains. When Redis is
down the batch stays in the buffer and the task retries with backoff, so logging resumes by itself.

Idempotent by pair id, end to end: each pair is written by one Lua script that sets the pair's
short-lived written marker with ``NX`` and appends the stream entry only when that set
succeeded, atomically. A batch that Redis executed but whose reply was lost (a timeout) is sent
again; its pairs find their marker set and add nothing, so no reader ever sees a pair twice and
``tunegate_pairs_logged_total`` stays exact. The dedup window is
``retention.pair_dedup_seconds``; the marker and the stream share the experiment's hash tag, and
on a Redis Cluster each batch goes as one pipeline per slot.

Acknowledged by replicas, opt in (``redis.wait_replicas``): Redis replicates asynchronously, so a
master that dies right after a batch can take it along. With ``wait_replicas`` set, each per-slot
pipeline ends with ``WAIT wait_replicas wait_timeout_ms`` on the same connection, and a batch
counts as written only when every slot's WAIT reports enough replicas; otherwise it stays in the
buffer (counted in ``tunegate_pair_batches_unreplicated_total{reason}``) and is sent again, its
written pairs finding their markers (so nothing is added twice, and ``pairs_logged`` counts each
pair once, when its batch is confirmed). A re-sent pair refreshes its marker's TTL, a write: so
the re-send's WAIT, on whichever connection, also covers the first try's writes.
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
from tunegate.lifecycle import AsyncResource, stop_task
from tunegate.outcomes import OUTCOME_FIELD
from tunegate.records import Pair, encode
from tunegate.redis import pipeline_then_wait, slot_groups, store_errors, transient

__all__ = ["WRITE_PAIR", "PairLogger"]

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 1.0
_DRAIN_FACTOR = 4  # a backlog drains in batches this many times batch_size

#: KEYS: the pairs stream, the pair's written marker. ARGV: ttl, maxlen, and the entry's fields
#: as tunegate.records.encode gives them: ``v``, ``json`` and the outcome field ``o`` (names
#: written here: each argument costs redis-py's packer a Python loop turn). A pair already
#: written refreshes its marker's TTL: the dedup window runs from the last try, and the write
#: moves the connection's replication offset past the first try's (WAIT then covers it).
WRITE_PAIR = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
                    'v', ARGV[3], 'json', ARGV[4], 'o', ARGV[5])
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return false
"""


class NotReplicated(Exception):
    """A batch Redis took but too few replicas acknowledged in time (``reason``); it stays
    buffered. Raised and caught inside this module only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PairLogger(AsyncResource):
    """Buffers pairs and writes them to Redis off the request path."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: PairLogSettings,
        metrics: ProxyMetrics,
        *,
        maxlen: int,
        dedup_seconds: int = 3600,
        shutdown_grace_s: float = 5.0,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
    ) -> None:
        self._redis = redis
        self._wait_replicas = wait_replicas
        self._wait_timeout_ms = wait_timeout_ms
        self._maxlen = maxlen
        self._dedup_s = dedup_seconds
        self._settings = settings
        self._metrics = metrics
        self._grace = shutdown_grace_s
        self._buffer: deque[Pair] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._sha: str | None = None  # WRITE_PAIR, loaded into Redis's script cache
        self.redis_ok = True
        self.replicated_ok = True

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
        while not self._closing:  # besides the cancel: a lost one (see stop_task) ends it too
            await self._wake.wait()
            await asyncio.sleep(interval)  # gather a batch: one round trip for many pairs
            self._wake.clear()
            while self._buffer and not self._closing:
                try:
                    await self._flush_batch()
                except StoreUnavailable as exc:
                    if self.redis_ok:
                        log.warning("pair log: redis unavailable, buffering (%s)", exc)
                    self.redis_ok = False
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                except NotReplicated as exc:
                    self._metrics.batches_unreplicated.labels(exc.reason).inc()
                    if self.replicated_ok:
                        log.warning(
                            "pair log: a batch was not acknowledged by %d replica(s) (%s);"
                            " keeping it buffered and sending it again",
                            self._wait_replicas,
                            exc.reason,
                        )
                    self.replicated_ok = False
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                except Exception:  # edge of the task: drop the batch, count it, keep the loop alive
                    log.exception("pair log: unexpected error writing a batch; dropping it")
                    self._drop_batch("rejected")
                    continue
                if not self.redis_ok:
                    log.info("pair log: redis is back, logging resumed")
                if not self.replicated_ok:
                    log.info("pair log: replicas acknowledge batches again")
                self.redis_ok = self.replicated_ok = True
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
        broken = next((r for r in results if transient(r)), None)
        if broken is not None:  # e.g. a cluster node died mid-pipeline: all of it again, later
            raise StoreUnavailable(f"pair log: {broken}")
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
        """WRITE_PAIR for each pair, one pipelined round trip per cluster slot (one on a single
        Redis) side by side; per-pair results or errors, in ``batch``'s order."""
        if self._sha is None:
            self._sha = await self._redis.script_load(WRITE_PAIR)
        streams = list(dict.fromkeys(keys.pairs(p.experiment) for p in batch))
        groups = slot_groups(self._redis, streams)
        if len(groups) == 1:
            return await self._write_group(batch)
        slot_of = {stream: i for i, group in enumerate(groups) for stream in group}
        parts: list[list[int]] = [[] for _ in groups]
        for index, pair in enumerate(batch):
            parts[slot_of[keys.pairs(pair.experiment)]].append(index)
        replies = await asyncio.gather(
            *(self._write_group([batch[i] for i in part]) for part in parts),
            return_exceptions=True,  # every slot's round trip ends before the batch's fate is known
        )
        done: list[list[object]] = []
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
            done.append(reply)
        results: list[object] = [None] * len(batch)
        for part, reply in zip(parts, done, strict=True):
            for index, result in zip(part, reply, strict=True):
                results[index] = result
        return results

    async def _write_group(self, batch: list[Pair]) -> list[object]:
        """One pipelined round trip for pairs whose keys share one slot (ending with WAIT when
        ``wait_replicas`` is set: :class:`NotReplicated` when too few replicas acknowledged)."""
        commands = [self._command(pair) for pair in batch]
        if self._wait_replicas:
            results, short = await pipeline_then_wait(
                self._redis,
                keys.pairs(batch[0].experiment),
                commands,
                self._wait_replicas,
                self._wait_timeout_ms,
            )
            if short is not None:
                raise NotReplicated(short)
            return results
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in commands:
                # by name: redis-py's cluster pipeline refuses ``evalsha()`` (a script could touch
                # any slot) but routes the raw command by its keys, which share one slot here
                pipe.execute_command(*command)
            replies: list[object] = await pipe.execute(raise_on_error=False)
        return replies

    def _command(self, pair: Pair) -> tuple[str | int | bytes, ...]:
        """The EVALSHA of WRITE_PAIR for one pair."""
        assert self._sha is not None
        fields = encode(pair)  # a proxy-built pair: schema 2, so with its outcome field
        return (
            "EVALSHA",
            self._sha,
            2,
            keys.pairs(pair.experiment),
            keys.pair_written(pair.experiment, pair.id),
            self._dedup_s,
            self._maxlen,
            fields["v"],
            fields["json"],
            fields[OUTCOME_FIELD],
        )

    def _drop_batch(self, reason: str) -> None:
        for _ in range(min(self._settings.batch_size, len(self._buffer))):
            pair = self._buffer.popleft()
            self._metrics.pairs_dropped.labels(pair.experiment, reason).inc()
        self._metrics.buffer_depth.set(len(self._buffer))

    async def aclose(self) -> None:
        """Stop the loop, flush what Redis takes (and, with ``wait_replicas``, its replicas
        acknowledge) within the grace period, count the rest."""
        self._closing = True
        await stop_task(self._task)
        self._task = None
        with contextlib.suppress(TimeoutError, StoreUnavailable):
            async with asyncio.timeout(self._grace):
                while self._buffer:
                    try:
                        await self._flush_batch()
                    except NotReplicated as exc:  # Redis has it, its replicas not yet: again
                        self._metrics.batches_unreplicated.labels(exc.reason).inc()
                        await asyncio.sleep(self._settings.flush_interval_ms / 1000)
        while self._buffer:
            pair = self._buffer.popleft()
            self._metrics.pairs_dropped.labels(pair.experiment, "shutdown").inc()
        self._metrics.buffer_depth.set(0)
