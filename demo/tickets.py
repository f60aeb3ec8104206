"""The ticket-triage task: generate support tickets with their JSON triage; load the shipped set.

Products and error codes are invented, so the base model cannot know them; the routing team is a
project rule (the first digit of the code's number picks the team) and the severity follows cue
phrases, so only a fine-tune learns them. Tickets carry distractors: names, order numbers, versions,
counts, and sometimes a second product or an old, resolved code. The generator is seeded, so the
shipped ``data/tickets.jsonl`` is reproducible (a test checks that it matches).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PROMPT",
    "TICKETS_FILE",
    "Ticket",
    "generate",
    "load_tickets",
    "prompt_for",
    "write_tickets",
]

TICKETS_FILE = Path(__file__).parent / "data" / "tickets.jsonl"

PROMPT = "Triage as JSON (product, error_code, severity, team):\n{text}"

#: product name -> error code prefix
PRODUCTS = {
    "Flux Router": "FX",
    "Quillbase": "QB",
    "Nimbra Vault": "NV",
    "Orrery Sync": "OS",
    "Kestrel Pay": "KP",
    "Lumen Desk": "LD",
    "Tarnwell Mail": "TM",
    "Vexa Edge": "VE",
}

#: first digit of the code's number -> routing team
TEAMS = {
    "1": "network",
    "2": "storage",
    "3": "billing",
    "4": "identity",
    "5": "platform",
    "6": "mobile",
}

SEVERITY_CUES = {
    "critical": [
        "everything is down for all of our users",
        "production is completely down",
        "nobody in the company can work right now",
        "this is a full outage across every site",
        "all customers are affected and we are losing money",
    ],
    "high": [
        "I am blocked and cannot finish my work",
        "I can't log in at all since this morning",
        "our team cannot ship anything until this is fixed",
        "it fails every single time I try",
        "this stops me from closing the month",
    ],
    "medium": [
        "it happens now and then but there is a workaround",
        "it is slow and sometimes times out",
        "it fails intermittently, maybe once an hour",
        "retrying usually works after a minute",
        "it is annoying but we can still work",
    ],
    "low": [
        "just a cosmetic glitch, no rush",
        "only a small question when you have time",
        "minor typo in the screen, nothing urgent",
        "not urgent at all, just curious",
        "low priority, the feature still works",
    ],
}

NAMES = ["Priya", "Marco", "Chen Wei", "Amara", "Jonas", "Lucia", "Tomasz", "Yuki", "Omar", "Ines"]
COMPANIES = ["Acme", "Birchline", "Corvid Labs", "Dunmore", "Elmstead", "Foxglove", "Gantry Co"]

OPENINGS = [
    "Hi, {name} from {company} here.",
    "Hello support,",
    "{name} ({company}):",
    "Dear team,",
    "Urgent note from {name}.",
    "",
]

PROBLEM_TEMPLATES = [
    "Our {product} shows error {code} {when}.",
    "{product} keeps throwing {code} {when}.",
    "Since {when_short}, {product} fails with code {code}.",
    "We get {code} from {product} {when}.",
    "The {product_lower} app gave us {code} {when}.",
    "Error {code} popped up in {product} {when}.",
]

WHEN = ["after the update", "every morning", "since Tuesday", "during checkout", "at login", ""]
WHEN_SHORT = ["yesterday", "the upgrade to v{version}", "last week", "09:40 today"]

DISTRACTORS = [
    "Order #{order} is affected.",
    "We run version {version} on {count} seats.",
    "My phone is 555-{order4} if you need it.",
    "Ticket ref {order} was closed last month.",
    "About {count} people noticed it.",
    "Invoice {order} is unrelated.",
]


@dataclass(frozen=True, slots=True)
class Ticket:
    """One support ticket and the triage the model should produce."""

    id: str
    split: str  # "train" or "heldout"
    text: str
    product: str
    error_code: str
    severity: str
    team: str

    @property
    def triage(self) -> dict[str, str]:
        return {
            "product": self.product,
            "error_code": self.error_code,
            "severity": self.severity,
            "team": self.team,
        }

    @property
    def answer(self) -> str:
        """The reference answer: compact JSON in a fixed key order."""
        return json.dumps(self.triage, separators=(", ", ": "))


def prompt_for(ticket: Ticket) -> str:
    return PROMPT.format(text=ticket.text)


def _code(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.choice(sorted(TEAMS))}{rng.randint(0, 99):02d}"


def _fill(rng: random.Random, template: str, **known: str) -> str:
    values = {
        "name": rng.choice(NAMES),
        "company": rng.choice(COMPANIES),
        "order": str(rng.randint(10000, 99999)),
        "order4": str(rng.randint(1000, 9999)),
        "count": str(rng.randint(2, 900)),
        "version": f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
        **known,
    }
    values["when"] = rng.choice(WHEN)
    values["when_short"] = rng.choice(WHEN_SHORT).format(version=values["version"])
    return " ".join(template.format(**values).split()).replace(" .", ".")


def _ticket(rng: random.Random, index: int, split: str) -> Ticket:
    product = rng.choice(sorted(PRODUCTS))
    code = _code(rng, PRODUCTS[product])
    severity = rng.choice(sorted(SEVERITY_CUES))
    known = {"product": product, "product_lower": product.lower(), "code": code}
    parts = [_fill(rng, rng.choice(OPENINGS)), _fill(rng, rng.choice(PROBLEM_TEMPLATES), **known)]
    parts.append(rng.choice(SEVERITY_CUES[severity]).capitalize() + ".")
    extras = [_fill(rng, rng.choice(DISTRACTORS))]
    roll = rng.random()
    if roll < 0.2:
        other = rng.choice(sorted(p for p in PRODUCTS if p != product))
        extras.append(f"We moved here from {other} last year.")
    elif roll < 0.4:
        extras.append(f"The old {_code(rng, PRODUCTS[product])} from last month is resolved.")
    rng.shuffle(extras)
    parts.extend(extras)
    text = " ".join(p for p in parts if p)
    team = TEAMS[code.split("-")[1][0]]
    return Ticket(f"{split}-{index:03d}", split, text, product, code, severity, team)


def generate(train: int = 400, heldout: int = 80, seed: int = 20261126) -> list[Ticket]:
    """``train`` + ``heldout`` distinct tickets; no held-out text appears in the training split."""
    rng = random.Random(seed)
    seen: set[str] = set()
    tickets: list[Ticket] = []
    for split, count in (("train", train), ("heldout", heldout)):
        made = 0
        while made < count:
            ticket = _ticket(rng, made, split)
            if ticket.text in seen:
                continue
            seen.add(ticket.text)
            tickets.append(ticket)
            made += 1
    return tickets


def write_tickets(path: Path = TICKETS_FILE) -> None:
    """Write the generated set as JSON lines (the shipped file)."""
    lines = [json.dumps(_row(t)) for t in generate()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _row(ticket: Ticket) -> dict[str, str]:
    return {
        "id": ticket.id,
        "split": ticket.split,
        "text": ticket.text,
        "product": ticket.product,
        "error_code": ticket.error_code,
        "severity": ticket.severity,
        "team": ticket.team,
    }


def load_tickets(split: str | None = None, path: Path = TICKETS_FILE) -> list[Ticket]:
    """The shipped tickets, optionally one split ("train" or "heldout")."""
    tickets = [Ticket(**json.loads(line)) for line in path.read_text().splitlines() if line]
    return [t for t in tickets if split is None or t.split == split]
