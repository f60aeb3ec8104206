"""Batched token-by-token decoding with per-row sampling, stops, limits and adapters.

One batch shares a forward pass per step: prompts are left-padded, each row keeps its own
temperature, top-p, seed, stop sequences, token limit and LoRA adapter (PEFT ``adapter_names``),
and finished or cancelled rows leave the batch (their KV-cache rows are dropped). Text reaches
the caller through the job's ``emit`` callback as soon as it is safe to show. Runs in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from proxy.upstream.local.loading import LoadedLM
from proxy.upstream.local.stops import TextTracker

__all__ = ["GenerationEvent", "GenerationJob", "decode_batch", "end_token_ids"]


@dataclass(slots=True)
class GenerationEvent:
    """A piece of text, or the end of the row (finish_reason set), or a failure."""

    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0
    error: BaseException | None = None


@dataclass(eq=False)
class GenerationJob:
    """One request's row: its prompt, sampling parameters and the queue its events go to."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue[GenerationEvent] = field(default_factory=asyncio.Queue)
    _cancelled: bool = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """The caller left (disconnect, timeout, shutdown): the row stops at the next step."""
        self._cancelled = True

    def emit(self, event: GenerationEvent) -> None:
        """Hand an event to the caller's event loop (thread-safe; dropped if the loop is gone)."""
        if self.loop is None:
            self.events.put_nowait(event)
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the loop closed: nobody is listening any more
            self._cancelled = True

    def fail(self, exc: BaseException) -> None:
        self.emit(GenerationEvent(error=exc))


def end_token_ids(lm: LoadedLM) -> set[int]:
    """Token ids that end a row: the tokenizer's EOS and the generation config's EOS ids."""
    ids: set[int] = set()
    for value in (
        lm.tokenizer.eos_token_id,
        getattr(lm.model.generation_config, "eos_token_id", None),
    ):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    return ids


def _generator(job: GenerationJob, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(job.seed if job.seed is not None else secrets.randbits(63))
    return generator


def _next_tokens(
    logits: torch.Tensor, jobs: list[GenerationJob], generators: list[torch.Generator | None]
) -> list[int]:
    """Greedy for temperature 0, else temperature + nucleus sampling with the row's generator."""
    chosen = logits.argmax(dim=-1).tolist()
    for row, (job, generator) in enumerate(zip(jobs, generators, strict=True)):
        if generator is None:
            continue
        scaled = logits[row] / job.temperature
        if job.top_p < 1.0:
            ordered, order = scaled.sort(descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) >= job.top_p  # always keeps the top token
            scaled = scaled.scatter(0, order[drop], float("-inf"))
        probs = scaled.softmax(-1)
        chosen[row] = int(torch.multinomial(probs, 1, generator=generator).item())
    return [int(token) for token in chosen]


def _prefill(lm: LoadedLM, jobs: list[GenerationJob]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded input ids and attention mask for the batch's prompts."""
    pad = lm.tokenizer.pad_token_id
    pad = pad if isinstance(pad, int) else 0
    width = max(len(job.prompt_ids) for job in jobs)
    ids = torch.full((len(jobs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(jobs), width), dtype=torch.long)
    for row, job in enumerate(jobs):
        ids[row, width - len(job.prompt_ids) :] = torch.tensor(job.prompt_ids, dtype=torch.long)
        mask[row, width - len(job.prompt_ids) :] = 1
    return ids.to(lm.device), mask.to(lm.device)


def decode_batch(lm: LoadedLM, jobs: list[GenerationJob]) -> None:
    """Generate every job's completion, emitting text deltas and one final event per job."""
    end_ids = end_token_ids(lm)
    trackers = [TextTracker(lm.tokenizer, job.stop, end_ids) for job in jobs]
    generators = [None if job.temperature == 0 else _generator(job, lm.device) for job in jobs]
    limit = lm.max_positions
    active = list(range(len(jobs)))
    with lm.lock, torch.inference_mode():
        ids, mask = _prefill(lm, jobs)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache: Any = DynamicCache()
        step_ids = ids
        while active:
            rows = [jobs[i] for i in active]
            out = lm.model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                logits_to_keep=1,
                **{lm.cache_arg: cache},
                **lm.adapter_kwargs([job.adapter for job in rows]),
            )
            cache = getattr(out, lm.cache_arg)
            logits = out.logits[:, -1, :].float()
            tokens = _next_tokens(logits, rows, [generators[i] for i in active])
            keep: list[int] = []
            for slot, (index, token) in enumerate(zip(active, tokens, strict=True)):
                job, tracker = jobs[index], trackers[index]
                if job.cancelled:
                    continue
                delta = tracker.push(token)
                full = limit is not None and mask.shape[1] + 1 >= limit
                if tracker.finish_reason is None and (tracker.tokens >= job.max_tokens or full):
                    delta += tracker.finish_length()
                if delta:
                    job.emit(GenerationEvent(text=delta))
                if tracker.finish_reason is not None:
                    job.emit(_final(tracker))
                else:
                    keep.append(slot)
            if len(keep) < len(active):
                if not keep:
                    break
                index_tensor = torch.tensor(keep, device=lm.device)
                cache.batch_select_indices(index_tensor)
                mask, positions = mask[index_tensor], positions[index_tensor]
                tokens = [tokens[slot] for slot in keep]
                active = [active[slot] for slot in keep]
            step_ids = torch.tensor(tokens, device=lm.device).unsqueeze(-1)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)
            positions = positions[:, -1:] + 1


def _final(tracker: TextTracker) -> GenerationEvent:
    return GenerationEvent(finish_reason=tracker.finish_reason, completion_tokens=tracker.tokens)
