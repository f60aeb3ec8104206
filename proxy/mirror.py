"""ShadowRunner: runs shadow copies in the background under a concurrency cap, a timeout and a
per-experiment budget; every copy it does not run is a drop with a reason.

Nothing here is awaited by the served request: ``try_start`` either starts a task (owned by the
runner, awaited at shutdown) or returns the reason it did not. Nothing is ever queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import Gauge

from proxy.config import MirrorSettings
from proxy.metrics import ProxyMetrics
from tunegate.errors import RecordError
from tunegate.experiments import ShadowBudget
from tunegate.lifecycle import AsyncResource
from tunegate.records import ArmResult
from tunegate.responses import parse_response

__all__ = ["ShadowBudgetMeter", "ShadowRunner"]

log = logging.getLogger(__name__)

ShadowCall = Callable[[float], Awaitable[ArmResult]]


class ShadowBudgetMeter:
    """Requests and tokens spent on shadow copies in the current minute, against the caps."""

    def __init__(self, budget: ShadowBudget, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._window = -1
        self.requests = 0
        self.tokens = 0

    def _roll(self) -> None:
        window = int(self._clock() // 60)
        if window != self._window:
            self._window, self.requests, self.tokens = window, 0, 0

    def admit(self) -> bool:
        """Count one copy if the minute's caps allow it."""
        self._roll()
        rpm, tpm = self.budget.requests_per_minute, self.budget.tokens_per_minute
        if (rpm is not None and self.requests >= rpm) or (tpm is not None and self.tokens >= tpm):
            return False
        self.requests += 1
        return True

    def charge(self, result: ArmResult) -> None:
        """Add the tokens a finished copy used (from its usage block) when tokens are capped."""
        if self.budget.tokens_per_minute is None or not result.body:
            return
        try:
            usage = parse_response(result).usage
        except (RecordError, ValueError, TypeError):
            return
        self._roll()
        self.tokens += usage.get("total_tokens", 0)


class ShadowRunner(AsyncResource):
    """Owns every running shadow call."""

    def __init__(
        self,
        settings: MirrorSettings,
        metrics: ProxyMetrics,
        budgets: Mapping[str, ShadowBudget],
        *,
        shutdown_grace_s: float = 5.0,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._grace = shutdown_grace_s
        self._meters = {
            name: ShadowBudgetMeter(b)
            for name, b in budgets.items()
            if b.requests_per_minute is not None or b.tokens_per_minute is not None
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._gauges: dict[str, Gauge] = {}
        self._closing = False

    @property
    def inflight(self) -> int:
        return len(self._tasks)

    def try_start(
        self, experiment: str, call: ShadowCall, done: Callable[[ArmResult], None]
    ) -> str | None:
        """Start ``call`` in the background, its result going to ``done``; else the drop reason."""
        if self._closing:
            return "shutdown"
        if len(self._tasks) >= self._settings.max_inflight:
            return "concurrency"
        meter = self._meters.get(experiment)
        if meter is not None and not meter.admit():
            return "budget"
        task = asyncio.create_task(self._run(experiment, call, done, meter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _run(
        self,
        experiment: str,
        call: ShadowCall,
        done: Callable[[ArmResult], None],
        meter: ShadowBudgetMeter | None,
    ) -> None:
        gauge = self._gauges.get(experiment)
        if gauge is None:
            gauge = self._gauges[experiment] = self._metrics.shadow_inflight.labels(experiment)
        gauge.inc()
        try:
            if self._settings.start_delay_ms:
                await asyncio.sleep(self._settings.start_delay_ms / 1000)
            result = await call(self._settings.timeout_seconds)
            if meter is not None:
                meter.charge(result)
            done(result)
        except Exception:  # edge of the task: a bug must not take the proxy down
            log.exception("shadow call for %s failed unexpectedly", experiment)
        finally:
            gauge.dec()

    async def aclose(self) -> None:
        """Start no more copies; let running ones finish within the grace, cancel the rest."""
        self._closing = True
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
