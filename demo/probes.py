"""Capability-regression probes: general questions with the answers the base model gives right.

Each reference is the key answer ("4", "Paris"); the demo scores the probe category with the
judge's ``contains`` scorer, since SmolLM2-135M-Instruct answers in a short sentence rather than
one word. A fine-tune that forgets how to answer plain questions, or answers everything in its
task's format, loses these pairs: a capability regression.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROBES_FILE", "Probe", "load_probes"]

PROBES_FILE = Path(__file__).parent / "data" / "probes.jsonl"


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe: its kind (arithmetic, facts, format), the question and the reference answer."""

    id: str
    kind: str
    prompt: str
    reference: str


def load_probes(path: Path = PROBES_FILE) -> list[Probe]:
    return [Probe(**json.loads(line)) for line in path.read_text().splitlines() if line]
