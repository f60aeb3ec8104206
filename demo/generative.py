"""The generative experiment: SmolLM2 (control) vs SmolLM2 + the ticket-triage LoRA (candidate).

Prepares what the orchestration needs: the adapter (trained, or reused from the cache), the two
in-process upstreams sharing one copy of the base weights, and the traffic: held-out tickets
(category ``tickets``, the triage JSON as reference) and the capability probes (category
``probe``, the known-good answer as reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demo.probes import load_probes
from demo.tickets import load_tickets, prompt_for
from demo.traffic import TrafficItem
from demo.train_lora import LoraConfig, train_lora
from proxy.config import LocalModelConfig, UpstreamConfig

__all__ = ["DEFAULT_TICKETS", "EXPERIMENT", "Prepared", "prepare_generative", "traffic_items"]

EXPERIMENT = "support-triage"

#: held-out tickets sent by default: enough for per-category evidence within the time budget
DEFAULT_TICKETS = 24


@dataclass(frozen=True, slots=True)
class Prepared:
    """A trained (or reused) candidate and the traffic to send."""

    experiment: str
    upstreams: dict[str, UpstreamConfig]
    items: list[TrafficItem]
    candidate: str  # where the candidate's weights are
    reused: bool
    train_seconds: float
    final_loss: float | None
    max_tokens: int


def traffic_items(tickets: int | None, probes: int | None) -> list[TrafficItem]:
    """The first ``tickets`` held-out tickets and ``probes`` probes (None: all), interleaved."""
    ticket_items = [
        TrafficItem("tickets", t.answer, prompt=prompt_for(t))
        for t in load_tickets("heldout")[:tickets]
    ]
    probe_items = [
        TrafficItem("probe", p.reference, prompt=p.prompt, labels={"probe": p.kind})
        for p in load_probes()[:probes]
    ]
    items: list[TrafficItem] = []
    longer, shorter = (
        (ticket_items, probe_items)
        if len(ticket_items) >= len(probe_items)
        else (probe_items, ticket_items)
    )
    step = max(1, round(len(longer) / max(len(shorter), 1)))
    for i, item in enumerate(longer):
        items.append(item)
        if i % step == step - 1 and shorter:
            items.append(shorter.pop(0))
    return items + shorter


def _local(path: str, adapter: str | None, max_queue: int) -> UpstreamConfig:
    return UpstreamConfig(
        local=LocalModelConfig(
            kind="causal_lm",
            path=path,
            adapter=adapter,
            max_batch_size=8,
            batch_window_ms=20.0,
            max_queue=max_queue,
        ),
        timeout_seconds=600.0,
    )


def prepare_generative(
    config: LoraConfig,
    *,
    tickets: int | None,
    probes: int | None,
    cache_dir: Path | None,
    force: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
) -> Prepared:
    """Train or reuse the adapter and describe the experiment. Blocking: run it in a thread."""
    adapter = train_lora(config, cache_dir=cache_dir, on_step=on_step, force=force)
    items = traffic_items(DEFAULT_TICKETS if tickets is None else tickets, probes)
    queue = max(64, 2 * len(items))
    return Prepared(
        experiment=EXPERIMENT,
        upstreams={
            "smollm2-base": _local(adapter.base, None, queue),
            "smollm2-tickets": _local(adapter.base, str(adapter.path), queue),
        },
        items=items,
        candidate=str(adapter.path),
        reused=adapter.reused,
        train_seconds=adapter.seconds,
        final_loss=adapter.final_loss,
        max_tokens=48,
    )
