"""GET /admin/experiments/{name}/verdict: the latest Decision, read as a rollout result.

For Argo Rollouts' web provider and Flagger's gate webhooks (see docs/argo-rollouts.md and
docs/flagger.md). The body is the latest Decision of the experiment's decisions stream (as the
controller recorded it) plus:

- ``result``: ``success`` (start_ab, ramp, promote), ``failure`` (roll_back, stop_equivalent) or
  ``inconclusive`` (continue, pause, no decision yet, or one older than ``max_age_seconds``);
  the table is tunegate.rollout's, the same the ``tunegate_verdict_code`` series uses;
- ``code`` (1, -1, 0), ``age_seconds``, ``stale`` and ``guardrails`` (name -> holds, breached,
  unproven).

It always answers 200 with that body, except with ``?expect=RESULT``: then 200 only when the
result is RESULT and 409 (the OpenAI error body, naming the result) otherwise, so a caller that
only sees the status (``curl -f`` in Flagger's load tester, a webhook) can gate on it.

Authentication is the admin API's: ``Authorization: Bearer`` the admin or the read-only token.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from proxy.errors import Conflict, Unavailable, UnknownModel
from proxy.routes.auth import Reader
from proxy.routes.deps import json_response
from proxy.runtime import Runtime
from tunegate import keys
from tunegate.errors import RecordError, StoreUnavailable
from tunegate.records import Decision, decode_decision
from tunegate.redis import store_errors
from tunegate.rollout import RolloutResult, guardrail_states, result_code, rollout_result

__all__ = ["router", "verdict_body"]

router = APIRouter(prefix="/admin", tags=["rollout"])


class Expect(StrEnum):
    SUCCESS = RolloutResult.SUCCESS.value
    FAILURE = RolloutResult.FAILURE.value
    INCONCLUSIVE = RolloutResult.INCONCLUSIVE.value


def verdict_body(
    experiment: str, decision: Decision | None, *, now: float, max_age_seconds: float | None
) -> dict[str, object]:
    """The response body: the decision (if any) and how a rollout tool reads it."""
    result = rollout_result(decision, now=now, max_age_seconds=max_age_seconds)
    if decision is None:
        return {
            "experiment": experiment,
            "result": result.value,
            "code": result_code(result),
            "action": None,
            "reason": "No decision has been recorded yet: the controller has not run.",
            "age_seconds": None,
            "stale": False,
            "guardrails": {},
        }
    age = max(0.0, now - decision.time)
    return {
        **decision.model_dump(mode="json"),
        "result": result.value,
        "code": result_code(result),
        "age_seconds": age,
        "stale": max_age_seconds is not None and age > max_age_seconds,
        "guardrails": guardrail_states(decision),
    }


async def _latest(rt: Runtime, experiment: str) -> Decision | None:
    assert rt.redis is not None
    try:
        with store_errors("read decisions"):
            entries = await rt.redis.xrevrange(keys.decisions(experiment), count=1)
    except StoreUnavailable as exc:
        raise Unavailable("decision store unavailable") from exc
    if not entries or entries[0][1] is None:
        return None
    try:
        return decode_decision(entries[0][1])
    except RecordError as exc:
        raise Unavailable(f"the latest decision of '{experiment}' is unreadable: {exc}") from exc


@router.get("/experiments/{name}/verdict")
async def get_verdict(
    name: str,
    rt: Reader,
    expect: Annotated[Expect | None, Query()] = None,
    max_age_seconds: Annotated[float | None, Query(gt=0)] = None,
) -> Response:
    if rt.experiment(name) is None:
        raise UnknownModel(f"no experiment named '{name}'")
    body = verdict_body(
        name, await _latest(rt, name), now=time.time(), max_age_seconds=max_age_seconds
    )
    if expect is not None and body["result"] != expect.value:
        raise Conflict(
            f"verdict of '{name}' is {body['result']} (action {body['action']}), not"
            f" {expect.value}",
            param="expect",
        )
    return json_response(body)
