"""The JSON contract of an offline evaluation: what a CI job and the live stage read.

``schema_version`` changes when a field changes meaning. The document holds only what the inputs
and the seed determine (no timings, no cache counters), so the same spec, answers and seed give
the same JSON byte for byte; how the run went (calls made, cache hits, seconds) is ``run.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from analysis.offline.outcome import Result
from analysis.offline.spec import EvalSpec

__all__ = ["SCHEMA_VERSION", "ItemRow", "build_report", "dumps"]

SCHEMA_VERSION = 1


@dataclass(slots=True)
class ItemRow:
    """One item with both answers and each metric's (control, candidate) value."""

    set: str
    role: str
    id: str
    category: str
    prompt: str
    reference: str | None
    control: str
    candidate: str
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "set": self.set,
            "role": self.role,
            "id": self.id,
            "category": self.category,
            "prompt": self.prompt,
            "reference": self.reference,
            "control": self.control,
            "candidate": self.candidate,
            "scores": {k: list(v) for k, v in sorted(self.scores.items())},
            "errors": dict(sorted(self.errors.items())),
        }


def _arm(spec: EvalSpec, arm: str) -> dict[str, object]:
    a = spec.control if arm == "control" else spec.candidate
    return {
        "upstream": a.upstream,
        "model": a.model or a.upstream,
        "system_prompt": a.system_prompt,
        "few_shot": len(a.few_shot),
    }


def build_report(
    spec: EvalSpec,
    result: Result,
    rows: list[ItemRow],
    *,
    mde: list[dict[str, object]],
    sections: dict[str, object] | None = None,
) -> dict[str, object]:
    """The whole document; ``sections`` adds contamination, curves, embeddings, judge, ..."""
    comparisons = []
    for scored, verdict in zip(result.comparisons, result.verdicts, strict=True):
        comparisons.append(
            {
                "set": scored.set,
                "role": scored.role,
                "primary": scored.primary,
                "verdict": verdict,
                **scored.comparison.to_dict(),
                **scored.extra,
            }
        )
    control_note = (
        "strongest baseline: the base model with the production prompt"
        if spec.control_kind == "strongest"
        else "zero-shot base model, as asked (control_kind: zero_shot): not the strongest baseline"
    )
    document: dict[str, object] = {
        "schema_version": SCHEMA_VERSION,
        "name": spec.name,
        "candidate_version": spec.version,
        "outcome": result.outcome.value,
        "exit_code": result.outcome.exit_code,
        "reasons": result.reasons,
        "regressions": result.regressions,
        "items_needed": result.items_needed,
        "control_kind": spec.control_kind,
        "control_note": control_note,
        "endpoint": spec.endpoint,
        "arms": {"control": _arm(spec, "control"), "candidate": _arm(spec, "candidate")},
        "decoding": spec.decoding.model_dump(mode="json"),
        "seed": spec.seed,
        "alpha": spec.alpha,
        "thresholds": spec.thresholds.model_dump(mode="json"),
        "minimum_detectable_effect": mde,
        "comparisons": comparisons,
        "items": [r.to_json() for r in sorted(rows, key=lambda r: (r.set, r.id))],
    }
    document.update(sections or {})
    return document


def dumps(document: dict[str, object]) -> bytes:
    """Stable bytes: sorted keys, indented; orjson writes NaN and infinities as null."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
