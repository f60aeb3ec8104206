"""JudgeWorker: the consumer-group loop — read, reclaim stale, score, write outcomes, ack.

Delivery is at least once, outcomes exactly once: a pair is acknowledged only after each of its
scorers has written its one outcome, a verdict or a dead letter, through the marker that both
kinds share (``judge.outcomes``), so a pair reclaimed from a worker killed anywhere between its
writes and its XACK gets no second outcome of either kind. Entries another worker left pending
longer than ``claim_idle_seconds`` are taken over with XAUTOCLAIM; a live worker renews the
entries it is still judging (``judge.leases``), so a pair waiting out a rate limit stays its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from itertools import chain
from typing import cast

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from judge.budget import Budget
from judge.cache import VerdictCache
from judge.clients import JudgeClient
from judge.config import JudgeSettings
from judge.family import check_family
from judge.leases import Leases
from judge.metrics import JudgeMetrics
from judge.outcomes import Outcomes, fields_json
from judge.pairwise import PairwiseJudge
from judge.scorers import AUTO, Embedder, Registry, build_registry
from judge.scoring import Entry, PairOutcomes
from judge.stats import WorkerStats
from tunegate import keys
from tunegate.errors import ConfigError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.lifecycle import AsyncResource, stop_task
from tunegate.redis import slot_groups, store_errors
from tunegate.retention import Retention

__all__ = ["STEPS", "JudgeWorker", "StepHook", "WorkerStats"]

log = logging.getLogger(__name__)

#: the points of the write/ack sequence a ``StepHook`` is told about, in the order they happen
STEPS = ("read", "verdict", "dead_letter", "before_ack", "acked")
#: how long each per-slot read blocks when the streams live on several cluster slots
_CLUSTER_POLL_MS = 50
#: called at each step (crash drills kill the process there); production passes none
StepHook = Callable[[str], None]


class JudgeWorker(AsyncResource):
    """One judge worker; any number share the consumer group ``keys.JUDGE_GROUP``."""

    def __init__(
        self,
        config: JudgeSettings,
        experiments: Iterable[ExperimentConfig],
        redis: aioredis.Redis,
        *,
        registry: Registry | None = None,
        name: str | None = None,
        metrics: JudgeMetrics | None = None,
        client: JudgeClient | None = None,
        embed: Embedder | None = None,
        on_step: StepHook | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.config = config
        self.redis = redis
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.metrics = metrics or JudgeMetrics(CollectorRegistry())
        self.stats = WorkerStats()
        self._experiments = {e.name: e for e in experiments}
        self._streams = {keys.pairs(e): e for e in self._experiments}
        self._registry = registry
        self._client = client
        self._embed = embed
        self._owns_client = False
        self._stop = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        self._outcomes = Outcomes(redis, retention or Retention())
        self._leases = Leases(redis, self.name)
        self._judge: PairwiseJudge | None = None
        self._pairs: PairOutcomes
        self._on_step = on_step
        self._last_reclaim = 0.0
        self._own_pending = True  # first read: entries this name left unacknowledged, if any

    # lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> JudgeWorker:
        try:
            await self._start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _start(self) -> None:
        if self._registry is None:
            self._registry = await self._build_registry()
        for experiment in self._experiments.values():
            listed = [
                *experiment.scorers,
                *chain.from_iterable(experiment.category_scorers.values()),
            ]
            unknown = [n for n in listed if n != AUTO and n not in self._registry]
            if unknown:
                raise ConfigError(
                    f"experiments[{experiment.name}].scorers: unknown or unavailable scorer"
                    f" {unknown[0]!r} (available: auto, {', '.join(sorted(self._registry))})"
                )
            self.metrics.touch(experiment.name)
        self._pairs = PairOutcomes(
            self.config, self._experiments, self._registry, self._outcomes,
            stats=self.stats, metrics=self.metrics, step=self._step, worker=self.name,
        )  # fmt: skip
        await self._ensure_groups()
        self._heartbeat = asyncio.create_task(self._beat(), name=f"heartbeat-{self.name}")

    async def aclose(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            await stop_task(self._heartbeat)
            self._heartbeat = None
            with contextlib.suppress(StoreUnavailable), store_errors():
                await self.redis.delete(keys.heartbeat(self.name))
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def stop(self) -> None:
        """Stop reading; the current batch finishes and is acknowledged."""
        self._stop.set()

    async def _build_registry(self) -> Registry:
        endpoint = self.config.endpoint
        judge = None
        if endpoint is not None:
            candidates = {
                e.name: e.candidate.model or e.candidate.upstream
                for e in self._experiments.values()
            }
            check_family(endpoint.model, candidates, strict=self.config.strict_family_check)
            if self._client is None:
                from judge.clients.factory import open_client

                self._client = await open_client(endpoint)
                self._owns_client = True
            judge = PairwiseJudge(
                self._client,
                self.config,
                cache=VerdictCache(self.redis, self.config.cache_ttl_seconds),
                budget=Budget(self.config, self.redis),
                observer=self.metrics.call,
            )
        self._judge = judge
        return build_registry(
            judge=judge,
            embed=self._embed,
            rubrics=self.config.rubrics,
            regex_timeout_seconds=self.config.regex_timeout_seconds,
        )

    async def _ensure_groups(self) -> None:
        for stream in self._streams:
            try:
                with store_errors("judge group"):
                    await self.redis.xgroup_create(stream, keys.JUDGE_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    # loop ------------------------------------------------------------------------------------

    async def run(self, *, until_idle: bool = False) -> WorkerStats:
        """Consume until stopped; with ``until_idle`` return once nothing is new or pending."""
        failures = 0
        while not self._stop.is_set():
            try:
                batch = await self._reclaim(force=until_idle)
                if not batch:
                    batch = await self._read(until_idle)
                if batch:
                    self._step("read")
                    await self._process(batch)
                elif until_idle and await self._drained():
                    break
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("judge worker %s: consumer group vanished; recreating it", self.name)
                await self._ensure_groups()
            except StoreUnavailable as exc:
                failures += 1
                self.stats.store_errors += 1
                log.warning("judge worker %s: redis unavailable (%s); retrying", self.name, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), min(0.1 * 2**failures, 5.0))
        return self.stats

    async def _read(self, until_idle: bool) -> list[Entry]:
        if not self._streams:
            return []
        if self._own_pending:  # our own delivered but unacknowledged entries (after a restart)
            batch = await self._read_from("0", None, reclaimed=True)
            if len(batch) < self.config.batch_size:
                self._own_pending = False
            if batch:
                return batch
        block = min(self.config.read_block_ms, 100) if until_idle else self.config.read_block_ms
        return await self._read_from(">", block, reclaimed=False)

    async def _read_from(self, start: str, block: int | None, *, reclaimed: bool) -> list[Entry]:
        groups = slot_groups(self.redis, list(self._streams))
        with store_errors("judge read"):
            if len(groups) == 1:
                responses = [await self._xreadgroup(groups[0], start, block)]
            else:  # a Redis Cluster refuses one read across slots: one per slot, side by side;
                # each polls briefly, since a long block in one would hold back the others' pairs
                poll = None if block is None else min(block, _CLUSTER_POLL_MS)
                responses = await asyncio.gather(
                    *(self._xreadgroup(group, start, poll) for group in groups)
                )
        batch = [e for r in responses for e in self._entries(r, reclaimed=reclaimed)]
        self.stats.read += len(batch)
        return batch

    async def _xreadgroup(self, streams: list[str], start: str, block: int | None) -> object:
        return await self.redis.xreadgroup(
            keys.JUDGE_GROUP,
            self.name,
            dict.fromkeys(streams, start),
            count=self.config.batch_size,
            block=block,
        )

    def _entries(self, response: object, *, reclaimed: bool) -> list[Entry]:
        # redis-py types stream replies loosely: [[stream, [(id, fields), ...]], ...]
        batch: list[Entry] = []
        for stream, entries in cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
                                    response or []):  # fmt: skip
            experiment = self._streams[stream.decode()]
            batch.extend(
                (experiment, entry_id, fields, reclaimed) for entry_id, fields in entries if fields
            )
        return batch

    async def _reclaim(self, *, force: bool) -> list[Entry]:
        now = time.monotonic()
        interval = min(self.config.claim_idle_seconds / 2, 5.0)
        if not force and now - self._last_reclaim < interval:
            return []
        self._last_reclaim = now
        batch: list[Entry] = []
        idle_ms = int(self.config.claim_idle_seconds * 1000)
        for stream, experiment in self._streams.items():
            with store_errors("judge reclaim"):
                response = await self.redis.xautoclaim(
                    stream, keys.JUDGE_GROUP, self.name, idle_ms, count=self.config.batch_size
                )
            for entry_id, fields in response[1]:
                if fields:
                    batch.append((experiment, entry_id, fields, True))
        self.stats.reclaimed += len(batch)
        return batch

    async def _drained(self) -> bool:
        for stream in self._streams:
            with store_errors("judge pending"):
                summary = await self.redis.xpending(stream, keys.JUDGE_GROUP)
            if summary["pending"]:
                return False
        return True

    def _step(self, step: str) -> None:
        if self._on_step is not None:
            self._on_step(step)

    async def _process(self, batch: list[Entry]) -> None:
        limit = asyncio.Semaphore(self.config.concurrency)
        by_stream: dict[str, list[bytes]] = {}
        for experiment, entry_id, _, _ in batch:
            by_stream.setdefault(keys.pairs(experiment), []).append(entry_id)
            self._leases.hold(keys.pairs(experiment), entry_id)

        async def one(entry: Entry) -> None:
            async with limit:
                try:
                    await self._pairs.handle(entry)
                except StoreUnavailable:
                    raise  # nothing is acknowledged; the batch comes back after reconnecting
                except Exception as exc:  # the edge of one pair's task: no crash loop on a bug
                    log.exception("judge worker %s: pair entry %r failed", self.name, entry[1])
                    self.stats.internal_errors += 1
                    await self._pairs.dead_letter(entry[0], entry[1].decode(),
                                                  fields_json(entry[2]), "internal_error",
                                                  repr(exc))  # fmt: skip

        try:
            async with asyncio.TaskGroup() as group:
                for entry in batch:
                    group.create_task(one(entry))
        except* StoreUnavailable as failed:
            self._own_pending = True
            self._leases.clear()
            raise failed.exceptions[0] from None
        self._step("before_ack")
        try:
            with store_errors("judge ack"):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for stream, ids in by_stream.items():
                        pipe.xack(stream, keys.JUDGE_GROUP, *ids)
                    await pipe.execute()
        finally:
            for stream, ids in by_stream.items():
                self._leases.release(stream, ids)
        self.stats.acked += len(batch)
        self._step("acked")

    # heartbeat and leases ----------------------------------------------------------------------

    @property
    def rate_limited_seconds(self) -> float:
        """How long this worker's LLM judge has been answering "later" (0 when it answers)."""
        return self._judge.gate.limited_seconds if self._judge is not None else 0.0

    async def _beat(self) -> None:
        """Refresh the heartbeat every ``heartbeat_seconds`` and the leases of the entries in
        flight well within ``claim_idle_seconds``."""
        period = min(self.config.heartbeat_seconds, self.config.claim_idle_seconds / 3)
        last_beat = -math.inf
        while True:
            try:
                if self._leases.count:
                    self.stats.renewed += await self._leases.renew()
                if time.monotonic() - last_beat >= self.config.heartbeat_seconds - period / 2:
                    await self._heartbeat_once()
                    last_beat = time.monotonic()
            except (StoreUnavailable, ResponseError) as exc:
                log.warning("judge worker %s: heartbeat failed: %s", self.name, exc)
            await asyncio.sleep(period)

    async def _heartbeat_once(self) -> None:
        limited = self.rate_limited_seconds
        fields: dict[FieldT, EncodableT] = {k: str(v) for k, v in asdict(self.stats).items()}
        fields |= {
            "time": str(time.time()),
            "pid": str(os.getpid()),
            "rate_limited_seconds": f"{limited:.1f}",
        }
        period = self.config.heartbeat_seconds
        with store_errors("heartbeat"):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(keys.heartbeat(self.name), mapping=fields)
                pipe.expire(keys.heartbeat(self.name), max(1, math.ceil(period * 3)))
                for stream in self._streams:
                    pipe.xpending(stream, keys.JUDGE_GROUP)
                results = await pipe.execute()
        for experiment, summary in zip(self._streams.values(), results[2:], strict=True):
            self.metrics.pending.labels(experiment).set(summary["pending"])
            self.metrics.rate_limited.labels(experiment).set(limited)
