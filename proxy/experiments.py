"""ExperimentTable: each experiment's definition and live state, kept current from Redis.

With ``proxy.experiments_from: redis`` (the default) the config file seeds the definitions into
Redis at start, last-applied (tunegate/definitions.py: only a definition the file changed since
it was last seeded is written); Redis holds them, and the admin API creates, edits and deletes
them at run time. A state hash (tunegate/state.py) overrides a definition's stage,
weight and mirror rate. Every change is published on ``keys.STATE_CHANNEL``: the table listens
and re-reads at once, and also re-reads every ``refresh_s`` in case a message was lost (pub/sub
does not store them). When Redis is
unreachable the last known definitions and states stay in force; before any seeding succeeded,
the config file's. A Redis without this file's seed markers (new, or wiped) is seeded again. With
``experiments_from: file`` the definitions are the file's and only the states live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterable

import redis.asyncio as aioredis

from tunegate import keys
from tunegate.definitions import Definition, read_definitions, seed_definitions
from tunegate.errors import RecordError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.lifecycle import AsyncResource, stop_task
from tunegate.records import ExperimentState
from tunegate.redis import store_errors
from tunegate.state import read_state

__all__ = ["ExperimentTable", "config_state"]

log = logging.getLogger(__name__)

_RETRY_S = 1.0  # pause before re-subscribing after the pub/sub connection failed
_WAIT_S = 0.5  # longest wait for one message (below any sensible socket timeout)


def config_state(cfg: ExperimentConfig) -> ExperimentState:
    """The state an experiment has before Redis holds one."""
    return ExperimentState(
        stage=cfg.stage, ab_weight=cfg.ab_weight, mirror_rate=cfg.mirror_rate, version=0
    )


class ExperimentTable(AsyncResource):
    """Definition, its version and live state per public model name."""

    def __init__(
        self,
        experiments: Iterable[ExperimentConfig],
        redis: aioredis.Redis,
        refresh_s: float,
        *,
        upstreams: Collection[str] | None = None,
        on_change: Callable[[ExperimentTable], None] | None = None,
        live_definitions: bool = True,
    ) -> None:
        self._seed = list(experiments)
        self.configs = {e.name: e for e in self._seed}
        self.definition_versions = dict.fromkeys(self.configs, 0)
        self._states = {name: config_state(cfg) for name, cfg in self.configs.items()}
        self._redis = redis
        self._refresh_s = refresh_s
        self._upstreams = upstreams
        self._on_change = on_change
        self.live_definitions = live_definitions
        self._seeded = False  # this table has seeded the file's definitions into this Redis
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    def config(self, name: str) -> ExperimentConfig | None:
        return self.configs.get(name)

    def state(self, name: str) -> ExperimentState:
        return self._states[name]

    def set_state(self, name: str, state: ExperimentState) -> None:
        """Take a state this replica just wrote, unless a newer one is already known."""
        if name in self._states and state.version >= self._states[name].version:
            before = self.versions()
            self._states[name] = state
            self._changed(before)

    def _usable(self, cfg: ExperimentConfig) -> bool:
        known = self._upstreams
        missing = [
            a.upstream for a in (cfg.control, cfg.candidate) if known and a.upstream not in known
        ]
        if missing:
            log.error("experiment %s: ignoring it, unknown upstream %s", cfg.name, missing[0])
        return not missing

    async def _definitions(self) -> None:
        # seed at start (last-applied: only a definition the file changed is written), and
        # again whenever Redis has lost this file's seed markers (new, or wiped; another
        # replica's markers do not count). They are checked after the read, so a read that a
        # wipe emptied is seen as such and read again.
        if not self._seeded:
            await seed_definitions(self._redis, self._seed)
            self._seeded = True
        found = await self._read_definitions()
        if self._seed and not await self._markers():
            await seed_definitions(self._redis, self._seed)
            found = await self._read_definitions()
        if found is None:
            return
        configs = {n: cfg for n, (cfg, _) in found.items() if self._usable(cfg)}
        versions = {n: found[n][1] for n in configs}
        if configs != self.configs or versions != self.definition_versions:
            for name in configs.keys() - self._states.keys():
                self._states[name] = config_state(configs[name])
            self.configs, self.definition_versions = configs, versions

    async def _markers(self) -> bool:
        """Whether Redis still marks every experiment of this file as seeded (one round trip)."""
        with store_errors("read definitions"):
            pipe = self._redis.pipeline(transaction=False)
            for cfg in self._seed:
                pipe.sismember(keys.SEEDED, cfg.name)
            marks = await pipe.execute()
        return all(marks)

    async def _read_definitions(self) -> dict[str, Definition] | None:
        try:
            return await read_definitions(self._redis)
        except RecordError as exc:
            log.error("ignoring the definitions in redis until they decode: %s", exc)
            return None

    def versions(self) -> dict[str, tuple[int, int]]:
        """(definition version, state version) per experiment: what this replica serves."""
        return {
            name: (self.definition_versions.get(name, 0), self._states[name].version)
            for name in self.configs
        }

    def _changed(self, before: dict[str, tuple[int, int]]) -> None:
        if self._on_change is not None and self.versions() != before:
            self._on_change(self)

    async def refresh(self) -> None:
        """Read the definitions and every state hash once; keeps what it had on any failure."""
        async with self._lock:  # one refresh at a time: the listener's and the poller's
            before = self.versions()
            await self._read()
            self._changed(before)

    async def _read(self) -> None:
        try:
            if self.live_definitions:
                await self._definitions()
        except StoreUnavailable:
            return
        for name, cfg in list(self.configs.items()):
            try:
                state = await read_state(self._redis, name)
            except StoreUnavailable:
                return
            except RecordError as exc:
                log.error("experiment %s: ignoring unreadable state in redis: %s", name, exc)
                continue
            self._states[name] = state if state is not None else config_state(cfg)
        for gone in self._states.keys() - self.configs.keys():
            del self._states[gone]

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # edge of the loop: keep refreshing
                log.exception("experiment state refresh failed")

    async def _listen(self) -> None:
        """Re-read on every change message; re-subscribe (and re-read) after a failure."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(keys.STATE_CHANNEL)
                    await self.refresh()  # what changed while not subscribed
                    while True:  # get_message's own wait: a socket timeout is not an error
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=_WAIT_S
                        )
                        if message is not None and message.get("type") == "message":
                            await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # edge of the loop: polling carries on meanwhile
                log.debug("state change listener: %s; re-subscribing", exc)
            await asyncio.sleep(_RETRY_S)

    async def __aenter__(self) -> ExperimentTable:
        with contextlib.suppress(StoreUnavailable):
            await self.refresh()
        self._tasks = [asyncio.create_task(self._poll(), name="experiment-state")]
        if callable(getattr(self._redis, "pubsub", None)):  # a cluster client may have none
            self._tasks.append(asyncio.create_task(self._listen(), name="experiment-changes"))
        return self

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await stop_task(task)
        self._tasks = []
