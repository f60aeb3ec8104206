"""ExperimentTable: each experiment's config and live state, refreshed from Redis in the background.

The config's stage, weight and mirror rate hold while Redis has no state hash for the experiment
(written by the admin API or the controller through tunegate.state); when it has one, it wins.
When Redis is unreachable the last known state stays in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis

from tunegate.errors import RecordError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.lifecycle import AsyncResource
from tunegate.records import ExperimentState
from tunegate.state import read_state

__all__ = ["ExperimentTable", "config_state"]

log = logging.getLogger(__name__)


def config_state(cfg: ExperimentConfig) -> ExperimentState:
    """The state an experiment has before Redis holds one."""
    return ExperimentState(
        stage=cfg.stage, ab_weight=cfg.ab_weight, mirror_rate=cfg.mirror_rate, version=0
    )


class ExperimentTable(AsyncResource):
    """Config and live state per public model name."""

    def __init__(
        self,
        experiments: Iterable[ExperimentConfig],
        redis: aioredis.Redis,
        refresh_s: float,
    ) -> None:
        self.configs = {e.name: e for e in experiments}
        self._states = {name: config_state(cfg) for name, cfg in self.configs.items()}
        self._redis = redis
        self._refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None

    def config(self, name: str) -> ExperimentConfig | None:
        return self.configs.get(name)

    def state(self, name: str) -> ExperimentState:
        return self._states[name]

    def set_state(self, name: str, state: ExperimentState) -> None:
        """Take a state this replica just wrote, unless a newer one is already known."""
        if state.version >= self._states[name].version:
            self._states[name] = state

    async def refresh(self) -> None:
        """Read every experiment's state hash once; keeps the last state on any failure."""
        for name in self.configs:
            try:
                state = await read_state(self._redis, name)
            except StoreUnavailable:
                return
            except RecordError as exc:
                log.error("experiment %s: ignoring unreadable state in redis: %s", name, exc)
                continue
            self._states[name] = state if state is not None else config_state(self.configs[name])

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # edge of the loop: keep refreshing
                log.exception("experiment state refresh failed")

    async def __aenter__(self) -> ExperimentTable:
        with contextlib.suppress(StoreUnavailable):
            await self.refresh()
        self._task = asyncio.create_task(self._run(), name="experiment-state")
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
