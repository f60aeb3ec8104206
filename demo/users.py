"""The A/B stage's simulated users: sticky ids, satisfaction that follows the answer's correctness.

Each request carries a user id (``x-user-id``, the experiment's sticky key), so the proxy keeps
every user on one arm and a ramp only moves users from control to candidate. After each answer
the user posts feedback (``POST /v1/feedback``, label ``satisfied``): 1 with the probability that
the answer is right — the triage JSON's share of correct fields, or whether a probe's key answer
is there — else 0, drawn from a seeded generator so a run is reproducible.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, replace

import httpx

from demo.traffic import USER_HEADER, Sent, TrafficItem

__all__ = ["FEEDBACK_LABEL", "Population", "correctness"]

FEEDBACK_LABEL = "satisfied"


def _fields(text: str) -> dict[str, object] | None:
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        return None
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def correctness(item: TrafficItem, answer: str) -> float:
    """How right ``answer`` is, in [0, 1]: a user's chance of being satisfied with it."""
    if item.category == "probe":
        words = re.findall(r"\w+", answer.lower())
        return 1.0 if item.reference.lower() in words else 0.0
    reference, given = json.loads(item.reference), _fields(answer)
    if given is None:
        return 0.0
    right = sum(
        str(given.get(k, "")).strip().lower() == str(v).lower() for k, v in reference.items()
    )
    return right / max(len(reference), 1)


@dataclass
class Population:
    """``size`` users with stable ids; ``seed`` fixes who is satisfied."""

    size: int
    seed: int = 5

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.posted = 0

    def user(self, index: int) -> str:
        return f"demo-user-{index % self.size:03d}"

    def round_traffic(
        self, fresh: list[TrafficItem], asked: list[TrafficItem], round_index: int
    ) -> tuple[list[TrafficItem], list[TrafficItem]]:
        """One A/B round: every user asks one question. The fresh items go to users in turn
        (a round further on each time); every other user asks one of the questions ``asked``
        before, drawn at random with replacement (seeded): production traffic repeats its
        common questions. A repeat is the same greedy request, so its pair repeats an earlier
        one; what it adds is the user's feedback and one more request's latency and errors on
        each arm. One request per user a round keeps requests as independent as users: the
        sample-ratio check counts requests, and a stage is a round here."""
        offset = round_index * len(fresh)
        users = [self.user(offset + i) for i in range(max(self.size, len(fresh)))]
        new = [replace(item, user=users[i]) for i, item in enumerate(fresh)]
        again = [replace(self._rng.choice(asked), user=u) for u in users[len(fresh) :]]
        return new, again

    async def feedback(self, base_url: str, model: str, sent: list[Sent]) -> int:
        """Post each served answer's feedback; returns how many were accepted."""
        accepted = 0
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
            for s in sent:
                if s.pair_id is None or s.text is None:
                    continue
                happy = self._rng.random() < correctness(s.item, s.text)
                body = {
                    "pair_id": s.pair_id,
                    "model": model,
                    "value": 1.0 if happy else 0.0,
                    "label": FEEDBACK_LABEL,
                }
                headers = {USER_HEADER: s.item.user} if s.item.user else {}
                response = await client.post("/feedback", json=body, headers=headers)
                accepted += response.status_code == 200
        self.posted += accepted
        return accepted
