"""Load a local model once, own its batcher, and report readiness while it loads.

The model loads on ``start()`` (the app's lifespan, or the first request); ``ready()`` starts the
load in the background when nobody has yet, so a readiness probe alone brings the upstream up.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Generic, Self, TypeVar

from proxy.config import LocalModelConfig
from proxy.errors import UpstreamUnavailable
from proxy.upstream.local.batcher import Batcher, BatchJob
from tunegate.lifecycle import AsyncResource

__all__ = ["LocalUpstream", "ModelLifecycle"]

J = TypeVar("J", bound=BatchJob)


class ModelLifecycle(Generic[J]):
    """Runs ``load`` once, keeps the batcher it returns, and closes it on ``aclose``."""

    def __init__(self, name: str, load: Callable[[], Awaitable[Batcher[J]]]) -> None:
        self.name = name
        self._load = load
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self.batcher: Batcher[J] | None = None
        self.error: str | None = None

    async def start(self) -> Batcher[J]:
        """The running batcher, loading the model first if needed (idempotent)."""
        async with self._lock:
            if self.batcher is None:
                try:
                    batcher = await self._load()
                except Exception as exc:  # loading is a seam: any failure makes it unready
                    self.error = f"{type(exc).__name__}: {exc}"
                    raise
                batcher.start()
                self.batcher = batcher
            return self.batcher

    async def running(self) -> Batcher[J]:
        """Like ``start`` for a request: a load failure is UpstreamUnavailable (502)."""
        try:
            return await self.start()
        except Exception as exc:  # reported to the client; the log has the cause via __cause__
            raise UpstreamUnavailable(f"local model {self.name} failed to load: {exc}") from exc

    async def ready(self) -> str | None:
        if self.batcher is not None:
            return None
        if self.error is not None:
            return f"model failed to load: {self.error}"
        if self._background is None:
            self._background = asyncio.create_task(self._start_quietly(), name=f"load-{self.name}")
        return "model loading"

    async def _start_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the error is kept in self.error for ready()
            await self.start()

    async def aclose(self) -> None:
        if self._background is not None:
            await self._background
            self._background = None
        if self.batcher is not None:
            await self.batcher.aclose()
            self.batcher = None


class LocalUpstream(AsyncResource, Generic[J]):
    """Base of the in-process upstreams: a model loaded once behind a dynamic batcher.

    Subclasses implement ``_load`` (load the model, return ``self._batcher(run)``) and the
    Upstream protocol's ``send`` and ``stream``; start, readiness and closing live here.
    """

    def __init__(self, name: str, cfg: LocalModelConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.shadow_capacity = cfg.max_queue  # shadow jobs wait in a queue of their own this long
        self.lifecycle: ModelLifecycle[J] = ModelLifecycle(name, self._load)

    @property
    def batcher(self) -> Batcher[J] | None:
        return self.lifecycle.batcher

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    @abstractmethod
    async def _load(self) -> Batcher[J]:
        """Load (or reuse) the model and return its running batcher."""

    def _batcher(self, run: Callable[[list[J]], None]) -> Batcher[J]:
        """A batcher over ``run`` with this model's batch size, window and queue bound."""
        return Batcher(
            self.name,
            run,
            max_batch_size=self.cfg.max_batch_size,
            window_s=self.cfg.batch_window_ms / 1000,
            max_queue=self.cfg.max_queue,
        )

    async def start(self) -> None:
        """Load the model and start batching; idempotent."""
        await self.lifecycle.start()

    async def ready(self) -> str | None:
        return await self.lifecycle.ready()

    async def aclose(self) -> None:
        await self.lifecycle.aclose()
