"""The outcome field of pair and verdict stream entries: what a decision reads of them, compact.

:func:`tunegate.records.encode` writes, beside a Pair's or a Verdict's ``json`` field, an ``o``
field (:data:`OUTCOME_FIELD`) with the few values the decision path reads: for a pair its time,
served arm and each arm's good-or-not, latency and token counts (about 80 bytes against 4.5 KB
with 1 KB bodies); for a verdict its pair, scorer, time, score, winner, per-arm scores, category
and swap inconsistency (no rationale, no raw judge output). The incremental evidence store asks
Redis for this field only (a Lua projection of XRANGE), so a look neither moves nor decodes the
bodies. The field is derived from the record when it is encoded, so it cannot disagree with it;
an entry without one (a schema-1 pair, a foreign writer) is read through its ``json``.

The values are a JSON array (orjson), floats written to round-trip exactly; NaN and infinities
become null as they do in the record's JSON. :func:`load_pair_outcome` and
:func:`load_verdict_outcome` refuse anything else with RecordError.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import orjson

from tunegate.errors import RecordError

if TYPE_CHECKING:
    from tunegate.records import Arm, ArmResult, Pair, Verdict, Winner

__all__ = [
    "OUTCOME_FIELD",
    "ArmOutcome",
    "PairOutcome",
    "VerdictOutcome",
    "dump_outcome",
    "load_pair_outcome",
    "load_verdict_outcome",
    "pair_outcome",
    "verdict_outcome",
]

OUTCOME_FIELD = "o"


class ArmOutcome(NamedTuple):
    ok: bool
    latency_s: float | None
    completion_tokens: int | None
    total_tokens: int | None

    @classmethod
    def of(cls, result: ArmResult) -> ArmOutcome:
        return cls(result.ok, result.latency_s, result.completion_tokens, result.total_tokens)


class PairOutcome(NamedTuple):
    time: float
    candidate_served: bool
    control: ArmOutcome | None
    candidate: ArmOutcome | None


class VerdictOutcome(NamedTuple):
    """The fields of a Verdict that evidence reads, with the Verdict's own types."""

    pair_id: str
    scorer: str
    time: float
    score: float | None
    winner: Winner | None
    arm_scores: dict[Arm, float] | None
    category: str | None
    inconsistent: bool


def pair_outcome(pair: Pair) -> PairOutcome:
    from tunegate.records import Arm

    def arm(result: ArmResult | None) -> ArmOutcome | None:
        return ArmOutcome.of(result) if result is not None else None

    return PairOutcome(
        pair.time, pair.served_arm is Arm.CANDIDATE, arm(pair.control), arm(pair.candidate)
    )


def verdict_outcome(verdict: Verdict) -> VerdictOutcome:
    return VerdictOutcome(
        verdict.pair_id,
        verdict.scorer,
        verdict.time,
        verdict.score,
        verdict.winner,
        verdict.arm_scores,
        verdict.category,
        verdict.inconsistent,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def dump_outcome(outcome: PairOutcome | VerdictOutcome) -> bytes:
    if isinstance(outcome, PairOutcome):
        arms = [
            None if a is None else [a.ok, _finite(a.latency_s), a.completion_tokens, a.total_tokens]
            for a in (outcome.control, outcome.candidate)
        ]
        return orjson.dumps([outcome.time, outcome.candidate_served, *arms])
    scores = (
        None
        if outcome.arm_scores is None
        else {k.value: _finite(v) for k, v in outcome.arm_scores.items()}
    )
    return orjson.dumps(
        [outcome.pair_id, outcome.scorer, outcome.time, _finite(outcome.score),
         outcome.winner.value if outcome.winner is not None else None, scores,
         outcome.category, outcome.inconsistent]
    )  # fmt: skip


def _num(value: object, what: str, *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"outcome: {what} is not a number")
    return float(value)


def _int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"outcome: {what} is not an integer")
    return value


def _text(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RecordError(f"outcome: {what} is not a string")
    return value


def _array(data: bytes, size: int) -> list[object]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"outcome: not JSON: {exc}") from exc
    if not isinstance(value, list) or len(value) != size:
        raise RecordError(f"outcome: not an array of {size}")
    return value


def _arm(value: object, what: str) -> ArmOutcome | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4 or not isinstance(value[0], bool):
        raise RecordError(f"outcome: {what} is not [ok, latency, completion, total]")
    return ArmOutcome(
        value[0],
        _num(value[1], f"{what} latency"),
        _int(value[2], f"{what} completion tokens"),
        _int(value[3], f"{what} total tokens"),
    )


def load_pair_outcome(data: bytes) -> PairOutcome:
    time, served, control, candidate = _array(data, 4)
    if not isinstance(served, bool):
        raise RecordError("outcome: served is not a boolean")
    when = _num(time, "time", optional=False)
    assert when is not None
    return PairOutcome(when, served, _arm(control, "control"), _arm(candidate, "candidate"))


def load_verdict_outcome(data: bytes) -> VerdictOutcome:
    from tunegate.records import Arm, Winner

    pair_id, scorer, time, score, winner, scores, category, inconsistent = _array(data, 8)
    when = _num(time, "time", optional=False)
    assert when is not None
    try:
        won = Winner(str(_text(winner, "winner"))) if winner is not None else None
        arm_scores = (
            None
            if scores is None
            else {Arm(k): _num(v, "arm score", optional=False) for k, v in _items(scores)}
        )
    except ValueError as exc:
        raise RecordError(f"outcome: {exc}") from exc
    if not isinstance(inconsistent, bool):
        raise RecordError("outcome: inconsistent is not a boolean")
    return VerdictOutcome(
        str(_text(pair_id, "pair id")),
        str(_text(scorer, "scorer")),
        when,
        _num(score, "score"),
        won,
        arm_scores,  # type: ignore[arg-type]  # _num with optional=False never returns None
        _text(category, "category", optional=True),
        inconsistent,
    )


def _items(value: object) -> list[tuple[str, object]]:
    if not isinstance(value, dict):
        raise RecordError("outcome: arm scores are not an object")
    return list(value.items())
