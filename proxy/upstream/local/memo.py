"""Reuse greedy answers: an identical temperature-0 request on the same weights is answered once.

With temperature 0 a causal LM's answer is a function of its weights (base + adapter) and the
request's tokens, token limit and stop sequences: asking again computes the same text. A
:class:`GreedyMemo` lives beside the loaded weights (one per base model, shared by every upstream
on it, so the offline gate's and the proxy's upstreams share it too) and keeps each finished
answer under that key; an upstream with ``reuse_greedy`` on answers a repeat from it instead of
decoding again. Sampled requests (temperature > 0) are never kept or served from it.

Identical requests in flight at once are decoded once: a later one waits for the first and takes
its answer, except that a served request never waits for a shadow copy (a shadow job waits in
its own queue and can be preempted: the served request decodes itself, as without the memo). An
answer that did not finish (cancelled, preempted, failed) is not kept; a waiter then decodes.

Batched decoding pads prompts to the batch's width, so the floats a row sees depend a little on
its neighbours; a kept answer is the one the model gave this exact request in its batch, as a
fresh decode's would be in its own. The counters (computed, reused) are kept per adapter.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass

__all__ = ["GreedyMemo", "MemoAnswer", "MemoKey", "MemoStats"]


@dataclass(frozen=True, slots=True)
class MemoKey:
    """What a greedy answer depends on, besides the weights the memo belongs to."""

    adapter: str | None  # the adapter's directory; None for the base model
    prompt_ids: tuple[int, ...]
    max_tokens: int
    stop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MemoAnswer:
    """A finished answer: its text, why it ended and how many tokens it took."""

    text: str
    finish_reason: str
    completion_tokens: int


@dataclass(slots=True)
class MemoStats:
    """Answers decoded (and kept) and answers served from the memo, for one adapter (or base)."""

    computed: int = 0
    reused: int = 0


@dataclass(slots=True)
class _InFlight:
    done: asyncio.Future[None]
    shadow: bool


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


class GreedyMemo:
    """Finished greedy answers by :class:`MemoKey`, at most ``max_entries`` (least recent out)."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._answers: collections.OrderedDict[MemoKey, MemoAnswer] = collections.OrderedDict()
        self._inflight: dict[MemoKey, _InFlight] = {}
        # the offline gate and the proxy may run on different event loops of one process
        self._lock = threading.Lock()
        self.stats: dict[str | None, MemoStats] = {}

    def _stats(self, adapter: str | None) -> MemoStats:
        return self.stats.setdefault(adapter, MemoStats())

    async def claim(self, key: MemoKey, *, shadow: bool) -> MemoAnswer | bool:
        """The kept answer for ``key``, else whether the caller owns the decode it must now do
        (True: others wait for it). Either way the caller then reports it with ``finish``."""
        while True:
            with self._lock:
                answer = self._answers.get(key)
                if answer is not None:
                    self._answers.move_to_end(key)
                    self._stats(key.adapter).reused += 1
                    return answer
                running = self._inflight.get(key)
                loop = asyncio.get_running_loop()
                if running is None:
                    self._inflight[key] = _InFlight(loop.create_future(), shadow)
                    return True
                if (running.shadow and not shadow) or running.done.get_loop() is not loop:
                    return False  # decode alongside: never behind a shadow copy's queue
            # the first claim ended: its answer is kept now, or nobody runs one and we take over
            await asyncio.shield(running.done)

    def finish(self, key: MemoKey, answer: MemoAnswer | None, *, owner: bool) -> None:
        """Keep ``answer`` (None: the decode did not finish); an owner's waiters then look again."""
        with self._lock:
            if answer is not None:
                self._answers[key] = answer
                self._answers.move_to_end(key)
                while len(self._answers) > self.max_entries:
                    self._answers.popitem(last=False)
                self._stats(key.adapter).computed += 1
            running = self._inflight.pop(key, None) if owner else None
        if running is not None and not running.done.done():
            loop = running.done.get_loop()
            if loop.is_closed():
                return
            loop.call_soon_threadsafe(_resolve, running.done)

    def __len__(self) -> int:
        return len(self._answers)
