"""The generative experiments: SmolLM2 (control) vs SmolLM2 + a ticket-triage LoRA (candidate).

Two candidates, one story: ``support-triage`` is the adapter trained on tickets only (it learns
the task and forgets how to answer anything else), ``support-triage-mixed`` the same task mixed
with the project's general instruction set (so the probes hold). Prepares what the orchestration
needs: the adapters (shipped in demo/adapters/, or trained in one process over one loaded base,
or reused from the cache), the in-process upstreams sharing one copy of the base weights, and
the traffic: held-out tickets (category ``tickets``, the triage JSON as reference) and the
capability probes (category ``probe``, the known-good answer as reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from demo.probes import load_probes
from demo.tickets import load_tickets, prompt_for
from demo.traffic import TrafficItem
from demo.train_lora import LoraConfig, train_lora
from proxy.config import LocalModelConfig, UpstreamConfig

__all__ = [
    "CANDIDATES",
    "DEFAULT_TICKETS",
    "EXPERIMENT",
    "GOOD_EXPERIMENT",
    "Prepared",
    "candidate_configs",
    "prepare_generative",
    "traffic_items",
]

EXPERIMENT = "support-triage"  # the regressing candidate: tickets only
GOOD_EXPERIMENT = "support-triage-mixed"  # tickets mixed with general instruction data
BASE_UPSTREAM = "smollm2-base"

#: adapter name -> (experiment, the share of each training batch from the general set)
CANDIDATES: dict[str, tuple[str, float]] = {
    "tickets": (EXPERIMENT, 0.0),
    "mixed": (GOOD_EXPERIMENT, 0.25),
}

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
    #: (wall, cpu) seconds of the training stages this run went through (none when reused)
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: where the adapter came from: "shipped" (demo/adapters/), "cache" or "trained"
    source: str = "trained"


def candidate_configs(steps: int | None = None) -> dict[str, LoraConfig]:
    """Each candidate's training recipe (the shipped adapters' too): the default but its mix."""
    return {
        name: LoraConfig(general_share=share)
        if steps is None
        else LoraConfig(steps=steps, general_share=share)
        for name, (_, share) in CANDIDATES.items()
    }


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
    steps: int | None,
    *,
    tickets: int | None,
    probes: int | None,
    cache_dir: Path | None,
    force: bool = False,
    train: bool = False,
    on_step: Callable[[str, int, int, float], None] | None = None,
) -> list[Prepared]:
    """Use the shipped adapters (unless ``train``), or train or reuse both from the cache, and
    describe both experiments. Blocking: run it in a thread."""
    adapters = train_lora(
        candidate_configs(steps),
        cache_dir=cache_dir,
        on_step=on_step,
        force=force,
        shipped=not (train or force),
    )
    items = traffic_items(DEFAULT_TICKETS if tickets is None else tickets, probes)
    queue = max(64, 4 * len(items))
    prepared = []
    for name, (experiment, _) in CANDIDATES.items():
        adapter = adapters[name]
        prepared.append(
            Prepared(
                experiment=experiment,
                upstreams={
                    BASE_UPSTREAM: _local(adapter.base, None, queue),
                    f"smollm2-{name}": _local(adapter.base, str(adapter.path), queue),
                },
                items=items,
                candidate=str(adapter.path),
                reused=adapter.reused,
                train_seconds=adapter.seconds,
                final_loss=adapter.final_loss,
                max_tokens=48,
                stages=adapter.stages,
                source=adapter.source,
            )
        )
    return prepared
