"""The demo's offline gate: `tunegate eval` on the held-out items, before any traffic.

The items the demo then mirrors go through the offline gate first (the shadow stage's, and every
probe the A/B rounds may send): the control is the strongest baseline (SmolLM2 with a
production system prompt and a worked example from the training split), the candidate the LoRA
adapter; tickets are scored with the live path's ``json_fields`` scorer and field accuracy, the
probes with their key answers as a probe suite (non-inferiority of one ``probe`` category, as
the live path scores it) that the control answers bare (``bare_control``: the base model's own
knowledge, as the live shadow stage's control answers them). The result is recorded in the
demo's Redis, and the demo's policy requires an offline pass before the controller may start the
A/B, so a regression shows here first and holds the live rollout. The retrieval demo's held-out
queries are evaluated the same way as an embedding set (recall@k, MRR@10, nDCG@10 over the
documents they rank).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from analysis.offline.spec import EvalSpec
from cli.settings import Settings
from demo.generative import BATCH, Prepared
from demo.tickets import load_tickets, prompt_for
from demo.traffic import TrafficItem

__all__ = ["OFFLINE_SYSTEM_PROMPT", "offline_gate"]

#: The control's production prompt: what a team would ship without fine-tuning.
OFFLINE_SYSTEM_PROMPT = (
    "You triage customer support tickets. Reply with one JSON object with the keys product,"
    " error_code, severity (low, medium, high or critical) and team, and nothing else."
)


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _retrieval_spec(prepared: Prepared, folder: Path, cache: Path) -> EvalSpec:
    """The retrieval demo: its held-out queries against every candidate document they rank."""
    control, candidate = list(prepared.upstreams)
    queries: list[dict[str, object]] = []
    qrels: list[dict[str, object]] = []
    corpus: dict[str, str] = {}
    for i, item in enumerate(prepared.items):
        query, *docs = item.inputs
        ids = [f"doc-{hashlib.sha256(d.encode()).hexdigest()[:12]}" for d in docs]
        corpus.update(zip(ids, docs, strict=True))
        queries.append({"id": f"q{i}", "text": query, "category": item.category})
        qrels.append({"query_id": f"q{i}", "doc_id": ids[int(item.reference)]})
    documents: list[dict[str, object]] = [{"id": k, "text": v} for k, v in sorted(corpus.items())]
    spec: dict[str, object] = {
        "name": prepared.experiment,
        "candidate_version": candidate,
        "endpoint": "embeddings",
        "control": {"upstream": control},
        "candidate": {"upstream": candidate},
        "embeddings": [
            {
                "name": "retrieval",
                "kind": "retrieval",
                "queries": str(_write(folder / "queries.jsonl", queries)),
                "corpus": str(_write(folder / "corpus.jsonl", documents)),
                "qrels": str(_write(folder / "qrels.jsonl", qrels)),
            }
        ],
        "cache_dir": str(cache),
        "out_dir": str(folder / "report"),
    }
    return EvalSpec.model_validate(spec)


def _offline_items(prepared: Prepared) -> list[TrafficItem]:
    """The shadow stage's items and every probe the A/B rounds may send: the whole probe suite
    the run can use, whose answers the live path then reuses (the same bare question, the same
    weights). The rounds' tickets are left to the live path: offline, their control is the
    production prompt, whose answers the live path (bare control) could not reuse."""
    seen = {item.prompt for item in prepared.items}
    probes = [i for r in prepared.rounds for i in r if i.category == "probe"]
    return prepared.items + [i for i in probes if i.prompt not in seen]


def _spec(prepared: Prepared, folder: Path, cache: Path) -> EvalSpec:
    control, candidate = list(prepared.upstreams)
    tickets, probes = [], []
    for i, item in enumerate(_offline_items(prepared)):
        row: dict[str, object] = {"prompt": item.prompt, "reference": item.reference}
        # one probe category, as the live path scores it (not one per kind): the same test
        if item.category == "probe":
            probes.append({**row, "id": f"probe-{i}", "category": item.category})
        else:
            tickets.append({**row, "id": f"ticket-{i}", "category": item.category})
    example = load_tickets("train")[0]
    spec: dict[str, object] = {
        "name": prepared.experiment,
        "candidate_version": candidate,
        "control": {
            "upstream": control,
            "system_prompt": OFFLINE_SYSTEM_PROMPT,
            "few_shot": [{"user": prompt_for(example), "assistant": example.answer}],
        },
        "candidate": {"upstream": candidate},
        "decoding": {"max_tokens": prepared.max_tokens, "temperature": 0.0},
        "tests": [
            {
                "name": "tickets",
                "path": str(_write(folder / "tickets.jsonl", tickets)),
                "metrics": ["json_fields", "field_accuracy"],
            }
        ],
        # the probes ask what the base model itself knows: the control answers them bare (the
        # production prompt makes it answer "How many months are in a year?" with a triage JSON)
        "probes": (
            [{"suite": str(_write(folder / "probes.jsonl", probes)), "bare_control": True}]
            if probes
            else []
        ),
        "cache_dir": str(cache),
        "out_dir": str(folder / "report"),
        "concurrency": 2 * BATCH,  # both arms' batches full
    }
    return EvalSpec.model_validate(spec)


async def offline_gate(
    prepared: Prepared,
    settings: Settings,
    folder: Path,
    console: Console,
    progress: Progress | None = None,
    cache: Path | None = None,
) -> dict[str, object]:
    """Run the gate with its files in ``folder``, record it in the demo's Redis, and return
    what the demo prints. ``cache``: the answer cache (default ``folder/cache``), which gates
    of several candidates share: the control's answers are the same for each."""
    from analysis.offline.report import render_html, render_markdown
    from cli.eval.pipeline import evaluate
    from cli.eval.record import record_result

    retrieval = bool(prepared.items) and bool(prepared.items[0].inputs)
    spec = (_retrieval_spec if retrieval else _spec)(prepared, folder, cache or folder / "cache")
    run = await evaluate(spec, settings, console, progress_bars=progress)
    (run.out_dir / "summary.md").write_text(render_markdown(run.document))
    report = render_html(run.document, run.out_dir / "report.html")
    await record_result(settings, run.document)
    return {
        "outcome": run.document["outcome"],
        "exit_code": run.document["exit_code"],
        "reasons": run.document["reasons"],
        "regressions": run.document["regressions"],
        "report": str(report.resolve()),
        "json": str((run.out_dir / "report.json").resolve()),
        "model_calls": run.run["model_calls"],
    }
