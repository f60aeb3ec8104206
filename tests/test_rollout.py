"""tunegate/rollout.py: each action has a result, staleness waits, guardrail labels stay bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunegate.records import Action, Decision, Stage
from tunegate.rollout import (
    GUARDRAIL_STATES,
    RESULT_OF,
    RolloutResult,
    guardrail_states,
    result_code,
    rollout_result,
)


def _decision(action: Action, time: float = 1000.0, **evidence: object) -> Decision:
    return Decision(
        experiment="exp",
        time=time,
        action=action,
        stage_before=Stage.SHADOW,
        stage_after=Stage.SHADOW,
        evidence=evidence,
    )


def test_every_action_has_a_result_and_codes_are_ordered() -> None:
    assert set(RESULT_OF) == set(Action)
    codes = [result_code(r) for r in (RolloutResult.FAILURE, RolloutResult.INCONCLUSIVE,
                                      RolloutResult.SUCCESS)]  # fmt: skip
    assert codes == [-1, 0, 1]


@pytest.mark.parametrize(("age", "max_age", "expected"), [
    (0.0, None, RolloutResult.SUCCESS),
    (10_000.0, None, RolloutResult.SUCCESS),
    (599.0, 600.0, RolloutResult.SUCCESS),
    (601.0, 600.0, RolloutResult.INCONCLUSIVE),
])  # fmt: skip
def test_a_stale_verdict_reads_inconclusive(
    age: float, max_age: float | None, expected: RolloutResult
) -> None:
    made = _decision(Action.PROMOTE, time=1000.0)
    assert rollout_result(made, now=1000.0 + age, max_age_seconds=max_age) is expected
    assert rollout_result(None, now=0.0) is RolloutResult.INCONCLUSIVE


def test_guardrail_states_from_the_evidence() -> None:
    made = _decision(
        Action.ROLL_BACK,
        guardrails=[
            {"name": "error_rate", "breached": True, "holds": False},
            {"name": "latency_p95", "breached": False, "holds": True},
            {"name": "tokens", "breached": False, "holds": False},
        ],
    )
    assert guardrail_states(made) == {
        "error_rate": "breached",
        "latency_p95": "holds",
        "tokens": "unproven",
    }


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner,
                                                                max_size=5),
    max_leaves=20,
)  # fmt: skip


@given(_JSON)
def test_guardrail_states_never_invent_labels_from_odd_evidence(guardrails: object) -> None:
    """Whatever the evidence holds, the labels are short snake_case names and known states."""
    states = guardrail_states(_decision(Action.CONTINUE, guardrails=guardrails))
    for name, state in states.items():
        assert state in GUARDRAIL_STATES
        assert name.isascii() and name[0].isalpha() and len(name) <= 40
        assert all(c.islower() or c.isdigit() or c == "_" for c in name)
