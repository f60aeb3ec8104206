"""Capability-regression probes: general questions with their key answers.

Each reference is the key answer ("4", "Paris"); the demo scores the probe category with the
judge's ``contains`` scorer, since SmolLM2-135M-Instruct answers in a short sentence rather than
one word. A fine-tune that forgets how to answer plain questions, or answers everything in its
task's format, loses these pairs: a capability regression.

:func:`generate_probes` writes the candidates: a fixed table of facts, opposites and counts, and
arithmetic from a seeded generator, never a question of the general instruction set the mixed
adapter trains on (``data/general.jsonl``). The shipped file (``data/probes.jsonl``, written by
``scripts/build_demo_probes.py``) holds every candidate in the generator's order, the ones the
base answers wrong too: kept to the control's right answers, a probe could only show the
candidate losing, so any change to the weights would look like a regression (the base's
marginal right answers flip, its wrong ones could not flip back).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NUMBER",
    "PROBES_FILE",
    "WORD",
    "Probe",
    "Row",
    "candidate_rows",
    "generate_probes",
    "interleave",
    "load_probes",
    "question_rows",
]

PROBES_FILE = Path(__file__).parent / "data" / "probes.jsonl"
GENERAL_FILE = Path(__file__).parent / "data" / "general.jsonl"

#: (kind, prompt, reference)
Row = tuple[str, str, str]

#: the instructions the questions end with
NUMBER = "Answer with just the number."
WORD = "Answer with one word."

#: the first probes, kept first: the ones every earlier demo run sent
_FIRST: list[Row] = [
    ("arithmetic", f"What is 2 + 2? {NUMBER}", "4"),
    ("arithmetic", f"What is 3 times 4? {NUMBER}", "12"),
    ("arithmetic", f"What is half of 10? {NUMBER}", "5"),
    ("arithmetic", f"How many days are in a week? {NUMBER}", "7"),
    ("arithmetic", f"How many months are in a year? {NUMBER}", "12"),
    ("arithmetic", f"How many hours are in a day? {NUMBER}", "24"),
    ("facts", f"What is the capital of France? {WORD}", "Paris"),
    ("facts", f"What is the capital of Japan? {WORD}", "Tokyo"),
    ("facts", f"What is the capital of Italy? {WORD}", "Rome"),
    ("facts", f"What is the capital of Germany? {WORD}", "Berlin"),
    ("facts", f"What is the capital of Spain? {WORD}", "Madrid"),
    ("facts", f"What is the capital of England? {WORD}", "London"),
    ("facts", f"What is the largest ocean on Earth? {WORD}", "Pacific"),
    ("facts", f"How many legs does a spider have? {NUMBER}", "8"),
    ("facts", f"What gas do humans need to breathe? {WORD}", "oxygen"),
    ("format", f"What is the opposite of hot? {WORD}", "cold"),
    ("format", f"What is the opposite of up? {WORD}", "down"),
    ("format", "Say only the number seven as a digit.", "7"),
]

_COUNTS = {
    "days are in a year": 365, "legs does a cat have": 4, "sides does a square have": 4,
    "legs does a bird have": 2, "eyes does a person have": 2, "fingers are on one hand": 5,
    "weeks are in a year": 52, "sides does a hexagon have": 6, "players are on a soccer team": 11,
}  # fmt: skip

_CAPITALS = {
    "Canada": "Ottawa", "Australia": "Canberra", "India": "Delhi", "Brazil": "Brasilia",
    "Argentina": "Buenos", "Turkey": "Ankara", "Thailand": "Bangkok", "Cuba": "Havana",
    "Finland": "Helsinki", "Denmark": "Copenhagen", "Belgium": "Brussels", "Hungary": "Budapest",
    "Iceland": "Reykjavik", "Chile": "Santiago", "Colombia": "Bogota", "Vietnam": "Hanoi",
    "Iran": "Tehran", "Iraq": "Baghdad", "Syria": "Damascus", "Lebanon": "Beirut",
    "the Netherlands": "Amsterdam", "Switzerland": "Bern", "South Korea": "Seoul",
    "Indonesia": "Jakarta", "the Philippines": "Manila", "Scotland": "Edinburgh",
    "Wales": "Cardiff", "Ukraine": "Kyiv", "Romania": "Bucharest", "the Czech Republic": "Prague",
    "Nigeria": "Abuja", "Morocco": "Rabat",
}  # fmt: skip

_FACTS = {
    "What is the largest planet in our solar system?": "Jupiter",
    "What color is grass?": "green", "What color is snow?": "white",
    "What animal says moo?": "cow", "What animal barks?": "dog",
    "Which planet is called the red planet?": "Mars", "What is the largest mammal?": "whale",
    "What season comes after winter?": "spring", "What is the first month of the year?": "January",
    "What day comes after Monday?": "Tuesday", "What language is spoken in France?": "French",
    "What language is spoken in Germany?": "German", "What is the tallest animal?": "giraffe",
}  # fmt: skip

_OPPOSITES = {
    "good": "bad", "day": "night", "black": "white", "yes": "no", "in": "out", "tall": "short",
    "hard": "soft", "rich": "poor", "thick": "thin", "strong": "weak", "first": "last",
    "win": "lose", "push": "pull", "love": "hate", "young": "old", "clean": "dirty",
    "inside": "outside", "true": "false", "above": "below", "on": "off", "start": "end",
    "buy": "sell", "cold": "hot", "down": "up", "night": "day", "slow": "fast", "small": "big",
    "dark": "light",
}  # fmt: skip

_DIGITS = {"one": 1, "four": 4, "six": 6, "eight": 8, "zero": 0}


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe: its kind (arithmetic, facts, format), the question and the reference answer."""

    id: str
    kind: str
    prompt: str
    reference: str


def _arithmetic(seed: int, count: int) -> list[Row]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        a, b = rng.randint(1, 12), rng.randint(1, 12)
        op = rng.choice(["+", "times", "minus"])
        if op == "+":
            out.append(("arithmetic", f"What is {a} + {b}? {NUMBER}", str(a + b)))
        elif op == "times":
            out.append(("arithmetic", f"What is {a} times {b}? {NUMBER}", str(a * b)))
        elif a != b:
            hi, lo = max(a, b), min(a, b)
            out.append(("arithmetic", f"What is {hi} minus {lo}? {NUMBER}", str(hi - lo)))
    out += [("arithmetic", f"What is half of {n}? {NUMBER}", str(n // 2)) for n in (6, 20, 100)]
    out += [("arithmetic", f"What is double {n}? {NUMBER}", str(2 * n)) for n in (3, 5, 10)]
    return out


def candidate_rows(seed: int = 18) -> list[Row]:
    """Every (kind, prompt, reference) the probe tables make, before any filtering."""
    kinds = question_rows(_COUNTS, _CAPITALS, _FACTS, _OPPOSITES)
    kinds[0] += _arithmetic(seed, 22)
    kinds[2] += [
        ("format", f"Say only the number {w} as a digit.", str(d)) for w, d in _DIGITS.items()
    ]
    return _FIRST + interleave(kinds)


def question_rows(
    counts: dict[str, int],
    capitals: dict[str, str],
    facts: dict[str, str],
    opposites: dict[str, str],
) -> list[list[Row]]:
    """The arithmetic, facts and format rows of the probes' question templates, one list per
    kind: the probes' tables and the rehearsal's (demo/rehearsal.py) are asked alike."""
    return [
        [("arithmetic", f"How many {q}? {NUMBER}", str(n)) for q, n in counts.items()],
        [("facts", f"What is the capital of {c}? {WORD}", a) for c, a in capitals.items()]
        + [("facts", f"{q} {WORD}", a) for q, a in facts.items()],
        [("format", f"What is the opposite of {w}? {WORD}", a) for w, a in opposites.items()],
    ]


def interleave(kinds: list[list[Row]]) -> list[Row]:
    """The first row of each kind, then the second of each, and so on (kinds run out)."""
    longest = max((len(k) for k in kinds), default=0)
    return [k[i] for i in range(longest) for k in kinds if i < len(k)]


def generate_probes(seed: int = 18) -> list[Probe]:
    """Every candidate probe, in a fixed order: the first ones, then the kinds interleaved."""
    general = {json.loads(line)["prompt"] for line in GENERAL_FILE.read_text().splitlines() if line}
    probes: list[Probe] = []
    seen: set[str] = set()
    for kind, prompt, reference in candidate_rows(seed):
        if prompt in general or prompt in seen:
            continue
        seen.add(prompt)
        probes.append(Probe(f"probe-{len(probes):03d}", kind, prompt, reference))
    return probes


def load_probes(path: Path = PROBES_FILE) -> list[Probe]:
    return [Probe(**json.loads(line)) for line in path.read_text().splitlines() if line]
