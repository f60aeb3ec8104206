"""The outcome field of pair and verdict entries: derived from the record, exact, and strict."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from bench.analysis.factories import pairs_and_verdicts, scored_records
from tunegate.errors import RecordError
from tunegate.outcomes import (
    OUTCOME_FIELD,
    load_pair_outcome,
    load_verdict_outcome,
    pair_outcome,
    verdict_outcome,
)
from tunegate.records import Arm, ArmResult, Pair, Verdict, decode, encode


def _fields(record: Pair | Verdict) -> dict[bytes, bytes]:
    """The stream fields as redis-py returns them (bytes keys)."""
    return {k.encode(): v for k, v in encode(record).items()}


def test_outcomes_round_trip_what_the_decoded_record_says():
    pairs, verdicts = pairs_and_verdicts(np.random.default_rng(3), 50, "task", 0.7, 0.5)
    more_pairs, more = scored_records([0.0, 0.25, 1.0])
    for pair in pairs + more_pairs:
        fields = _fields(pair)
        assert load_pair_outcome(fields[b"o"]) == pair_outcome(decode(fields, Pair))
    for verdict in verdicts + more:
        fields = _fields(verdict)
        loaded = load_verdict_outcome(fields[b"o"])
        assert loaded == verdict_outcome(decode(fields, Verdict))


def test_non_finite_values_become_null_as_in_the_records_json():
    [pair], [verdict] = scored_records([0.5])
    assert pair.control is not None
    pair.control.latency_s = math.inf
    verdict.score = math.nan
    fields = _fields(pair)
    control = load_pair_outcome(fields[b"o"]).control
    assert control is not None and control.latency_s is None
    decoded = decode(fields, Pair).control
    assert decoded is not None and decoded.latency_s is None
    fields = _fields(verdict)
    assert load_verdict_outcome(fields[b"o"]).score is None
    assert decode(fields, Verdict).score is None


def test_a_schema_1_pair_gets_no_outcome_field():
    [pair], _ = scored_records([0.5])
    assert OUTCOME_FIELD == "o" and OUTCOME_FIELD in encode(pair)
    pair.schema_version = 1
    assert OUTCOME_FIELD not in encode(pair)


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"{}", b"[1, true, null]", b'["t", true, null, null]', b"[1, 1, null, null]",
     b"[1, true, [1, 0.1, null, null], null]", b"[1, true, [true, \"x\", null, null], null]",
     b"[1, true, [true, 0.1, 1.5, null], null]", b"[true, true, null, null]",
     b"[1, true, [true, 0.1], null]"],
)  # fmt: skip
def test_hostile_pair_outcomes_are_refused(data):
    with pytest.raises(RecordError):
        load_pair_outcome(data)


def _verdict_array(**change: object) -> bytes:
    base: dict[str, object] = {
        "pair_id": "p", "scorer": "s", "time": 1.0, "score": 0.5, "winner": "tie",
        "arm_scores": {"candidate": 1.0, "control": 0.0}, "category": "c", "inconsistent": False,
    }  # fmt: skip
    base.update(change)
    return orjson.dumps(list(base.values()))


def test_a_good_verdict_outcome_loads():
    loaded = load_verdict_outcome(_verdict_array())
    assert loaded.arm_scores == {Arm.CANDIDATE: 1.0, Arm.CONTROL: 0.0}


@pytest.mark.parametrize(
    "change",
    [{"pair_id": 3}, {"scorer": None}, {"time": None}, {"score": "1"}, {"winner": "both"},
     {"arm_scores": {"nobody": 1.0}}, {"arm_scores": {"candidate": None}}, {"arm_scores": [1]},
     {"category": 5}, {"inconsistent": 0}, {"score": True}],
)  # fmt: skip
def test_hostile_verdict_outcomes_are_refused(change):
    with pytest.raises(RecordError):
        load_verdict_outcome(_verdict_array(**change))


def test_an_unvalidated_arm_result_encodes_its_counts():
    result = ArmResult(upstream="u", model="m", status=200, completion_tokens=3, total_tokens=9)
    [pair], _ = scored_records([0.5])
    pair.candidate = result
    outcome = load_pair_outcome(encode(pair)[OUTCOME_FIELD])
    assert outcome.candidate is not None and outcome.candidate.completion_tokens == 3
