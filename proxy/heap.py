"""HeapWatch: times every garbage collection into a histogram, and freezes the start-up heap.

Why: a failing upstream raises an exception per call, and exceptions with tracebacks form
reference cycles that only the cyclic collector frees; each full collection then walks the
whole heap (every imported module, the config, the app), which stalled the proxy for 70-190 ms
per collection in the issue's candidate-down drill. ``gc.freeze()`` once the app is built moves
everything alive at start into a permanent generation the collector no longer walks, so a full
collection only looks at what was allocated since (measured with ``python -m bench.proxy.drills``).
``tunegate_gc_pause_seconds{generation}`` shows the pauses in production too.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

from proxy.metrics import ProxyMetrics
from tunegate.lifecycle import AsyncResource

__all__ = ["HeapWatch"]


class HeapWatch(AsyncResource):
    """Enter after the app is built (freezes the heap, starts timing); leave to undo both."""

    def __init__(self, metrics: ProxyMetrics, *, freeze: bool = True) -> None:
        self._freeze = freeze
        self._children: list[Histogram] = [
            metrics.gc_pause.labels(str(generation)) for generation in range(3)
        ]
        self._started = 0.0

    async def __aenter__(self) -> HeapWatch:
        if self._freeze:
            gc.collect()  # what is garbage now is not frozen with the rest
            gc.freeze()
        gc.callbacks.append(self._on_gc)
        return self

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info.get("generation", 2)
        self._children[min(max(int(generation), 0), 2)].observe(time.perf_counter() - self._started)

    async def aclose(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._freeze:
            gc.unfreeze()
