"""PairDraft: joins the served leg and the shadow leg into one Pair and hands it to the logger.

Whichever leg finishes second completes the pair; with no shadow copy, the served leg does.
Everything runs on one event loop, so no lock is needed. Building the pair copies each good
answer's token counts out of its usage block onto the ArmResult, so the decision path reads them
from the record and never parses a response body.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from proxy.extract import RequestFacts
from tunegate.records import PAIR_SCHEMA_VERSION, Arm, ArmResult, Endpoint, Pair, trusted
from tunegate.responses import usage_counts

__all__ = ["PairDraft", "new_pair_id"]


def new_pair_id() -> str:
    """A random 96-bit id, hex."""
    return os.urandom(12).hex()


class PairDraft:
    """A pair waiting for its legs."""

    __slots__ = (
        "_served",
        "_shadow",
        "_submit",
        "_waiting",
        "endpoint",
        "experiment",
        "facts",
        "id",
        "mirror_skipped",
        "request",
        "served_arm",
        "time",
    )

    def __init__(
        self,
        submit: Callable[[Pair], None],
        *,
        pair_id: str,
        experiment: str,
        endpoint: Endpoint,
        request: bytes,
        served_arm: Arm,
        facts: RequestFacts,
    ) -> None:
        self._submit = submit
        self.id = pair_id
        self.experiment = experiment
        self.endpoint = endpoint
        self.request = request
        self.served_arm = served_arm
        self.facts = facts
        self.time = time.time()
        self.mirror_skipped: str | None = None
        self._served: ArmResult | None = None
        self._shadow: ArmResult | None = None
        self._waiting = 1

    def expect_shadow(self) -> None:
        """A shadow copy started: the pair waits for it too."""
        self._waiting += 1

    def skip_shadow(self, reason: str) -> None:
        self.mirror_skipped = reason

    def served_done(self, result: ArmResult) -> None:
        self._served = result
        self._leg_done()

    def shadow_done(self, result: ArmResult) -> None:
        self._shadow = result
        self._leg_done()

    def _leg_done(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self._submit(self.build())

    def build(self) -> Pair:
        """The Pair record (constructed without validation: every field has its exact type)."""
        served_is_control = self.served_arm is Arm.CONTROL
        control = self._served if served_is_control else self._shadow
        candidate = self._shadow if served_is_control else self._served
        for result in (control, candidate):
            if result is not None and result.ok and result.body:
                _count_tokens(result)
        return trusted(
            Pair,
            schema_version=PAIR_SCHEMA_VERSION,
            id=self.id,
            experiment=self.experiment,
            time=self.time,
            endpoint=self.endpoint,
            request=self.request.decode("utf-8", "replace"),
            served_arm=self.served_arm,
            control=control,
            candidate=candidate,
            mirror_skipped=self.mirror_skipped,
            user_key_hash=self.facts.user_key_hash,
            category=self.facts.category,
            reference=self.facts.reference,
            labels=self.facts.labels,
        )


def _count_tokens(result: ArmResult) -> None:
    """Copy the usage block's counts onto the result (built unvalidated, so set in place)."""
    usage = usage_counts(result)
    # straight into the fields' __dict__ (where pydantic keeps them): three assignments through
    # BaseModel.__setattr__ cost more than counting the tokens (the values are exact ints/None)
    result.__dict__.update(
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
    )
