"""Rehearsal data for the good candidate: general questions answered in the base model's own words.

A fine-tune forgets what it is not reminded of. The mixed adapter keeps the base's general
answers by rehearsing them: :func:`rehearsal_candidates` makes questions of the probes' kinds
(counts, sums, products, differences, halves and doubles, capitals, simple facts, opposites)
from tables of their own, never a probe candidate (:func:`demo.probes.candidate_rows`), and
``scripts/build_demo_general.py`` asks the base each one through the proxy's in-process backend
and appends the answers it gets right, verbatim, to ``data/general.jsonl`` as ``rehearsal-NNN``
rows. Training on the base's own answers (self-distillation replay) reminds the adapter of what
the base already does instead of teaching it a new style, which is what moved its weights away
from those answers in the first place.
"""

from __future__ import annotations

import itertools

from demo.probes import NUMBER, Row, candidate_rows, interleave, question_rows

__all__ = ["rehearsal_candidates"]

_COUNTS = {
    "legs does a horse have": 4, "wheels does a car have": 4, "sides does a pentagon have": 5,
    "sides does an octagon have": 8, "legs does an insect have": 6, "continents are there": 7,
    "colors are in a rainbow": 7, "strings does a guitar have": 6, "letters are in the English"
    " alphabet": 26, "cents are in a dollar": 100, "years are in a decade": 10,
    "years are in a century": 100, "eggs are in a dozen": 12, "toes are on one foot": 5,
    "legs does a chicken have": 2, "arms does an octopus have": 8,
    "sides does a rectangle have": 4, "corners does a triangle have": 3,
    "seasons are in a year": 4, "wings does a bird have": 2, "noses does a person have": 1,
    "days are in a weekend": 2, "wheels does a tricycle have": 3, "ears does a person have": 2,
}  # fmt: skip

_CAPITALS = {
    "Mexico": "Mexico", "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Afghanistan": "Kabul",
    "Nepal": "Kathmandu", "Saudi Arabia": "Riyadh", "Jordan": "Amman", "Qatar": "Doha",
    "Ghana": "Accra", "Senegal": "Dakar", "Venezuela": "Caracas", "Ecuador": "Quito",
    "Uruguay": "Montevideo", "Croatia": "Zagreb", "Serbia": "Belgrade", "Bulgaria": "Sofia",
    "Slovakia": "Bratislava", "Lithuania": "Vilnius", "Latvia": "Riga", "Estonia": "Tallinn",
    "New Zealand": "Wellington", "Jamaica": "Kingston", "Malaysia": "Kuala", "Libya": "Tripoli",
    "Tunisia": "Tunis", "Algeria": "Algiers", "Sudan": "Khartoum", "Uganda": "Kampala",
    "Zimbabwe": "Harare", "Angola": "Luanda", "Mongolia": "Ulaanbaatar", "Cambodia": "Phnom",
}  # fmt: skip

_FACTS = {
    "What color is the sun?": "yellow", "What animal says meow?": "cat",
    "What animal says quack?": "duck", "What do cows give us to drink?": "milk",
    "What is the closest star to Earth?": "Sun", "What color are strawberries?": "red",
    "What do we call a baby dog?": "puppy", "What do we call a baby cat?": "kitten",
    "What is the hottest planet in our solar system?": "Venus",
    "What is the smallest planet in our solar system?": "Mercury",
    "What language is spoken in Spain?": "Spanish", "What language is spoken in Italy?": "Italian",
    "What month comes after March?": "April", "What day comes after Friday?": "Saturday",
    "What season comes after summer?": "autumn", "What is the largest desert in the world?":
    "Sahara", "What organ pumps blood through the body?": "heart",
    "What do plants need from the sun to grow?": "light",
}  # fmt: skip

_OPPOSITES = {
    "high": "low", "near": "far", "heavy": "light", "loud": "quiet", "rough": "smooth",
    "sweet": "sour", "wide": "narrow", "give": "take", "come": "go", "laugh": "cry",
    "front": "back", "top": "bottom", "north": "south", "east": "west", "boy": "girl",
    "always": "never", "friend": "enemy", "awake": "asleep", "alive": "dead", "easy": "hard",
    "cheap": "expensive", "before": "after", "more": "less", "question": "answer",
}  # fmt: skip


def _arithmetic() -> list[Row]:
    """Every sum, product and difference of 1..12, then halves and doubles."""
    out: list[Row] = []
    for a, b in itertools.product(range(1, 13), repeat=2):
        out.append(("arithmetic", f"What is {a} + {b}? {NUMBER}", str(a + b)))
        out.append(("arithmetic", f"What is {a} times {b}? {NUMBER}", str(a * b)))
        if a > b:
            out.append(("arithmetic", f"What is {a} minus {b}? {NUMBER}", str(a - b)))
    out += [("arithmetic", f"What is half of {n}? {NUMBER}", str(n // 2)) for n in range(2, 41, 2)]
    out += [("arithmetic", f"What is double {n}? {NUMBER}", str(2 * n)) for n in range(1, 21)]
    return out


def rehearsal_candidates(arithmetic: int = 96) -> list[Row]:
    """(kind, prompt, reference) rows, none of them a probe candidate, in a fixed order.

    ``arithmetic`` of the arithmetic rows are taken, spread evenly over the table (it has
    hundreds) so that sums, products, differences, halves and doubles are all rehearsed.
    """
    probes = {prompt for _, prompt, _ in candidate_rows()}
    sums = [row for row in _arithmetic() if row[1] not in probes]
    spread = [sums[i * len(sums) // arithmetic] for i in range(min(arithmetic, len(sums)))]
    kinds = question_rows(_COUNTS, _CAPITALS, _FACTS, _OPPOSITES)
    kinds[0] += spread
    return [row for row in interleave(kinds) if row[1] not in probes]
