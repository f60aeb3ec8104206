"""ShadowRunner: runs shadow copies in the background under a concurrency cap, a timeout and a
per-experiment budget; every copy it does not run is a drop with a reason.

Nothing here is awaited by the served request: ``try_start`` either starts a task (owned by the
runner, awaited at shutdown) or returns the reason it did not. Nothing is ever queued: besides
the global cap, each upstream takes at most its ``shadow_capacity`` copies at once (the size of
its shadow pool), so a started copy never waits for a connection either.

A started copy always completes its pair: when its call raises (a bug), the runner records the
failure on that arm with the reason ``internal`` and counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from prometheus_client import Gauge

from proxy.config import MirrorSettings
from proxy.metrics import ProxyMetrics
from tunegate.errors import RecordError
from tunegate.experiments import ShadowBudget
from tunegate.lifecycle import AsyncResource
from tunegate.records import ArmResult
from tunegate.responses import parse_response

__all__ = ["ShadowBudgetMeter", "ShadowCopy", "ShadowRunner"]

log = logging.getLogger(__name__)


class ShadowCopy(Protocol):
    """One shadow call: what it runs, where its result goes, and the result of a crash."""

    experiment: str
    upstream: str  # the lane its capacity is counted in

    async def run(self, timeout_s: float) -> ArmResult:
        """The arm's call; records its own upstream failures, raises only on a bug."""
        ...

    def done(self, result: ArmResult) -> None:
        """Hand the arm's result to the pair."""
        ...

    def failed(self, reason: str, latency_s: float) -> ArmResult:
        """The arm's result when ``run`` raised."""
        ...


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
        self._lanes: dict[str, int] = {}  # upstream -> copies running there
        self._closing = False

    def set_budgets(self, budgets: Mapping[str, ShadowBudget]) -> None:
        """Take the budgets of the experiments served now; an unchanged one keeps its meter."""
        meters = {}
        for name, budget in budgets.items():
            if budget.requests_per_minute is None and budget.tokens_per_minute is None:
                continue
            meter = self._meters.get(name)
            meters[name] = (
                meter
                if meter is not None and meter.budget == budget
                else (ShadowBudgetMeter(budget))
            )
        self._meters = meters

    def lane_inflight(self, upstream: str) -> int:
        """Copies running against ``upstream`` now."""
        return self._lanes.get(upstream, 0)

    def try_start(self, copy: ShadowCopy, capacity: int) -> str | None:
        """Start ``copy`` in the background (at most ``capacity`` on its upstream); else why not."""
        if self._closing:
            return "shutdown"
        lanes, lane = self._lanes, copy.upstream
        running = lanes.get(lane, 0)
        if len(self._tasks) >= self._settings.max_inflight or running >= capacity:
            return "concurrency"
        meter = self._meters.get(copy.experiment)
        if meter is not None and not meter.admit():
            return "budget"
        lanes[lane] = running + 1
        task = asyncio.create_task(self._run(copy, meter))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None

    async def _run(self, copy: ShadowCopy, meter: ShadowBudgetMeter | None) -> None:
        experiment = copy.experiment
        gauge = self._gauges.get(experiment)
        if gauge is None:
            gauge = self._gauges[experiment] = self._metrics.shadow_inflight.labels(experiment)
        gauge.inc()
        started = time.perf_counter()
        try:
            try:
                if self._settings.start_delay_ms:
                    await asyncio.sleep(self._settings.start_delay_ms / 1000)
                result = await copy.run(self._settings.timeout_seconds)
            except asyncio.CancelledError:  # cancelled before the call began: still a pair
                result = copy.failed("cancelled", time.perf_counter() - started)
            except Exception:  # edge of the task: a bug must not take the proxy down or the pair
                log.exception("shadow call for %s failed unexpectedly", experiment)
                result = copy.failed("internal", time.perf_counter() - started)
            if meter is not None:
                meter.charge(result)
            copy.done(result)
        except Exception:  # the pair's own bookkeeping failed: count it, keep the loop alive
            log.exception("shadow result for %s could not be recorded", experiment)
            self._metrics.pairs_dropped.labels(experiment, "internal").inc()
        finally:
            self._lanes[copy.upstream] -= 1
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
