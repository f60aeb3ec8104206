"""The continuous folder: keeps every experiment's decision state folded between looks.

The lease holder of ``tunegate decide --loop`` runs one :class:`ContinuousFolder` beside its
looks: every ``fold_interval_seconds`` it folds what arrived since the last fold into each
experiment's decision state (analysis/evidence_store.py, the same fold a look runs), so a look
only folds the few seconds since the last tick and then decides from the state. The cost of
folding moves off the look, it does not vanish: it is spread over the interval, O(new records).

Nothing here is state of its own: the state and cursors live in Redis, each page is one watched
transaction, so a folder killed anywhere (or replaced by another replica's) leaves whole pages
only, and a fold racing a look's fold commits each page once. Folding is paged, and every page
awaits Redis, so the event loop (the lease heartbeat) runs between pages.

A module of its own beside analysis/controller.py because it is a task with a lifecycle (the
controller is called per look); both reach Redis only through analysis/evidence_store.py and
tunegate/state.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from analysis.decide import live_stage
from analysis.evidence_store import EvidenceStore
from tunegate.errors import TunegateError
from tunegate.experiments import ExperimentConfig
from tunegate.lifecycle import AsyncResource, stop_task
from tunegate.records import ExperimentState
from tunegate.state import read_state

__all__ = ["ContinuousFolder", "look_stage"]

log = logging.getLogger(__name__)


def look_stage(config: ExperimentConfig, state: ExperimentState | None) -> tuple[float, float]:
    """(since, weight) of the stage the SRM counts are for, as a look passes it to the store."""
    _, weight, since = live_stage(config, state)
    return since, weight


class ContinuousFolder(AsyncResource):
    """Folds the experiments' new records every ``interval_s`` while ``active()`` holds.

    ``experiments`` is called at each tick (the decide loop swaps its definitions in);
    ``active`` says whether to fold now (the decide loop: while this replica holds the lease).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        experiments: Callable[[], Mapping[str, ExperimentConfig]],
        interval_s: float,
        *,
        active: Callable[[], bool] = lambda: True,
        page: int = 2000,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.client = client
        self.interval_s = interval_s
        self.page = page
        self.folded = 0  # entries folded by this folder, for tests and the bench
        self._experiments = experiments
        self._active = active
        self._task: asyncio.Task[None] | None = None

    async def fold_once(self) -> int:
        """Fold every experiment to the end of its streams as they stand; the entries folded."""
        total = 0
        for config in list(self._experiments().values()):
            state = await read_state(self.client, config.name)
            store = EvidenceStore(
                self.client,
                config.name,
                page=self.page,
                policy=config.policy,
                stage=look_stage(config, state),
            )
            total += await store.catch_up()
        self.folded += total
        return total

    async def _run(self) -> None:
        while True:
            if self._active():
                try:
                    await self.fold_once()
                except (TunegateError, RedisError) as exc:  # the next tick (or look) folds it
                    log.warning("continuous fold failed: %s", exc)
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> ContinuousFolder:
        self._task = asyncio.create_task(self._run(), name="continuous-fold")
        return self

    async def aclose(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
