"""What a rollout tool reads from a Decision: success, failure or inconclusive, and its code.

Argo Rollouts and Flagger ask one question of an analysis step: may the candidate advance, must
the rollout abort, or should it keep waiting? tunegate's answer is its latest Decision, read
through this one table (both the controller's Prometheus series and the admin API's verdict
endpoint use it, so the two can never disagree):

========================  ==============  ====  ============================================
action                    result          code  why
========================  ==============  ====  ============================================
start_ab, ramp, promote   success          1    the evidence allows more traffic on the candidate
roll_back                 failure         -1    a guardrail is breached or the judge says worse
stop_equivalent           failure         -1    no better than the control: keep the control
continue, pause           inconclusive     0    not enough evidence yet, or the data are suspect
========================  ==============  ====  ============================================

A verdict older than the caller's ``max_age_seconds`` reads as inconclusive: a controller that
stopped deciding must not keep a rollout advancing on an old success.
"""

from __future__ import annotations

import re
from enum import StrEnum

from tunegate.records import Action, Decision

__all__ = [
    "GUARDRAIL_STATES",
    "RESULT_OF",
    "RolloutResult",
    "guardrail_states",
    "result_code",
    "rollout_result",
]

GUARDRAIL_STATES = ("holds", "breached", "unproven")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a guardrail name from the engine, never user input


class RolloutResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    INCONCLUSIVE = "inconclusive"


RESULT_OF: dict[Action, RolloutResult] = {
    Action.START_AB: RolloutResult.SUCCESS,
    Action.RAMP: RolloutResult.SUCCESS,
    Action.PROMOTE: RolloutResult.SUCCESS,
    Action.ROLL_BACK: RolloutResult.FAILURE,
    Action.STOP_EQUIVALENT: RolloutResult.FAILURE,
    Action.CONTINUE: RolloutResult.INCONCLUSIVE,
    Action.PAUSE: RolloutResult.INCONCLUSIVE,
}

_CODES = {RolloutResult.SUCCESS: 1, RolloutResult.INCONCLUSIVE: 0, RolloutResult.FAILURE: -1}


def result_code(result: RolloutResult) -> int:
    """1 success, 0 inconclusive, -1 failure: the value of ``tunegate_verdict_code``."""
    return _CODES[result]


def rollout_result(
    decision: Decision | None, *, now: float, max_age_seconds: float | None = None
) -> RolloutResult:
    """The decision's result; inconclusive when there is none or it is older than the limit."""
    if decision is None:
        return RolloutResult.INCONCLUSIVE
    if max_age_seconds is not None and now - decision.time > max_age_seconds:
        return RolloutResult.INCONCLUSIVE
    return RESULT_OF[decision.action]


def guardrail_states(decision: Decision) -> dict[str, str]:
    """Each guardrail of the decision's evidence as holds, breached or unproven."""
    found = decision.evidence.get("guardrails")
    states: dict[str, str] = {}
    if not isinstance(found, list):
        return states
    for item in found:
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            continue
        if item.get("breached") is True:
            states[name] = "breached"
        elif item.get("holds") is True:
            states[name] = "holds"
        else:
            states[name] = "unproven"
    return states
