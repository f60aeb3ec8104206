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
from dataclasses import dataclass, field, replace
from pathlib import Path

from demo.probes import load_probes
from demo.tickets import load_tickets, prompt_for
from demo.traffic import TrafficItem
from demo.train_lora import LoraConfig, train_lora
from proxy.config import LocalModelConfig, UpstreamConfig

__all__ = [
    "BATCH",
    "CANDIDATES",
    "DEFAULT_PROBES",
    "DEFAULT_TICKETS",
    "EXPERIMENT",
    "GOOD_EXPERIMENT",
    "MAX_TOKENS",
    "Prepared",
    "candidate_configs",
    "local_upstream",
    "prepare_generative",
    "round_items",
    "traffic_items",
]

EXPERIMENT = "support-triage"  # the regressing candidate: tickets only
GOOD_EXPERIMENT = "support-triage-mixed"  # tickets mixed with general instruction data
BASE_UPSTREAM = "smollm2-base"

#: adapter name -> (experiment, its training recipe). The mixed one takes half of each batch
#: from the general set and twice the steps at a lower rate: at 28 steps of 4e-3 it still lost
#: 2-3 of the shadow stage's 36 probes (docs/demo.md has the search), and a category blocks the
#: A/B start unless it is within one standard error (8.3 points at 36) of the 10-point tolerance
CANDIDATES: dict[str, tuple[str, LoraConfig]] = {
    "tickets": (EXPERIMENT, LoraConfig()),
    "mixed": (GOOD_EXPERIMENT, LoraConfig(general_share=0.5, steps=56, learning_rate=3e-3)),
}

#: the demo's token limit per answer (the build scripts ask the base with it too: demo.asking)
MAX_TOKENS = 48

#: rows per forward pass of the in-process backend. Decoding is bound by reading the weights
#: (fp32, 0.5 GB a step): on 2 cores a step of 32 rows took 192 ms against 140 ms for 8, so 32
#: decodes about 2.9 times the answers a second (the 127 probes: 31 s against 66 s, the same
#: answers). The demo's clients keep that many requests in flight per arm.
BATCH = 32

#: held-out tickets sent by default: enough for per-category evidence within the time budget
DEFAULT_TICKETS = 24
#: probes sent by default in the shadow stage (and the offline gate); later ones feed the rounds
DEFAULT_PROBES = 36


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
    #: each A/B round's items, fresh ones (not the shadow stage's); none: the shadow's again
    rounds: list[list[TrafficItem]] = field(default_factory=list)

    def round_items(self, round_index: int) -> list[TrafficItem]:
        """What A/B round ``round_index`` (1, 2, ...) sends."""
        if not self.rounds:
            return self.items
        return self.rounds[(round_index - 1) % len(self.rounds)]


def candidate_configs(steps: int | None = None) -> dict[str, LoraConfig]:
    """Each candidate's training recipe (the shipped adapters' too); ``steps`` replaces its
    step count (a recipe other than the shipped one: ``tunegate demo --steps N``)."""
    return {
        name: config if steps is None else replace(config, steps=steps)
        for name, (_, config) in CANDIDATES.items()
    }


def _all_items() -> tuple[list[TrafficItem], list[TrafficItem]]:
    tickets = [
        TrafficItem("tickets", t.answer, prompt=prompt_for(t)) for t in load_tickets("heldout")
    ]
    probes = [
        TrafficItem("probe", p.reference, prompt=p.prompt, labels={"probe": p.kind})
        for p in load_probes()
    ]
    return tickets, probes


def traffic_items(tickets: int | None, probes: int | None) -> list[TrafficItem]:
    """The first ``tickets`` held-out tickets and ``probes`` probes (None: all), interleaved."""
    ticket_items, probe_items = _all_items()
    return _interleave(ticket_items[:tickets], probe_items[:probes])


def round_items(tickets: int, probes: int, rounds: int) -> list[list[TrafficItem]]:
    """Each A/B round's items: half the shadow stage's count of each kind, taken in turn from the
    held-out tickets and probes the shadow stage did not send, so that a round's pairs are new
    evidence (with greedy decoding a repeated item repeats its pair). When those run out a round
    takes them again from the first; with none left over, the shadow stage's are used."""
    ticket_items, probe_items = _all_items()
    plan = []
    for r in range(rounds):
        chosen = []
        for pool, sent in ((ticket_items, tickets), (probe_items, probes)):
            rest = pool[sent:] or pool[:sent]
            size = max(1, sent // 2) if sent else 0
            chosen.append([rest[(r * size + k) % len(rest)] for k in range(size)] if rest else [])
        plan.append(_interleave(*chosen))
    return plan


def _interleave(
    ticket_items: list[TrafficItem], probe_items: list[TrafficItem]
) -> list[TrafficItem]:
    """Probes spread through the tickets (or tickets through the probes, whichever is fewer)."""
    probe_items = list(probe_items)
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


def local_upstream(path: str, adapter: str | None, max_queue: int) -> UpstreamConfig:
    """The demo's in-process SmolLM2 upstream (``adapter``: a LoRA on the base), ``BATCH`` rows a
    forward pass."""
    return UpstreamConfig(
        local=LocalModelConfig(
            kind="causal_lm",
            path=path,
            adapter=adapter,
            max_batch_size=BATCH,
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
    rounds: int = 0,
) -> list[Prepared]:
    """Use the shipped adapters (unless ``train``), or train or reuse both from the cache, and
    describe both experiments with their shadow traffic and ``rounds`` A/B rounds' traffic.
    Blocking: run it in a thread."""
    adapters = train_lora(
        candidate_configs(steps),
        cache_dir=cache_dir,
        on_step=on_step,
        force=force,
        shipped=not (train or force),
    )
    tickets = DEFAULT_TICKETS if tickets is None else tickets
    probes = DEFAULT_PROBES if probes is None else probes
    items = traffic_items(tickets, probes)
    plan = round_items(tickets, probes, rounds)
    queue = max(64, 4 * len(items))
    prepared = []
    for name, (experiment, _) in CANDIDATES.items():
        adapter = adapters[name]
        prepared.append(
            Prepared(
                experiment=experiment,
                upstreams={
                    BASE_UPSTREAM: local_upstream(adapter.base, None, queue),
                    f"smollm2-{name}": local_upstream(adapter.base, str(adapter.path), queue),
                },
                items=items,
                candidate=str(adapter.path),
                reused=adapter.reused,
                train_seconds=adapter.seconds,
                final_loss=adapter.final_loss,
                max_tokens=MAX_TOKENS,
                stages=adapter.stages,
                source=adapter.source,
                rounds=plan,
            )
        )
    return prepared
