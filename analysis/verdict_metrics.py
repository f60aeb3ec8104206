"""The verdict a rollout tool reads, as Prometheus series: result, action, guardrails, samples.

One set of gauges per experiment, set from each Decision the controller makes (the judge win
rate and its bounds are ControllerMetrics' ``tunegate_win_rate``; they are not repeated here):

- ``tunegate_verdict_code{experiment}``: 1 success, 0 inconclusive, -1 failure
  (tunegate.rollout's table), what Argo Rollouts' and Flagger's Prometheus checks compare;
- ``tunegate_verdict_result{experiment,result}``: 1 for the current result, 0 for the others;
- ``tunegate_verdict_action{experiment,action}``: 1 for the latest action, 0 for the others;
- ``tunegate_verdict_guardrail{experiment,guardrail,state}``: 1 for each guardrail's state,
  ``holds`` (non-inferiority shown), ``breached`` (significantly worse) or ``unproven``;
- ``tunegate_verdict_samples_needed{experiment}``: judged pairs (or exposure) still needed
  before the next step, 0 when the decision is not ``continue``;
- ``tunegate_verdict_timestamp_seconds{experiment}``: when the decision was made, so a query
  can refuse a stale verdict (``time() - ... < bool 600``).

Every label takes bounded values: the Action and RolloutResult enums, the guardrail names the
decision engine computes, and three states.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from tunegate.records import Action, Decision
from tunegate.rollout import (
    GUARDRAIL_STATES,
    RolloutResult,
    guardrail_states,
    result_code,
    rollout_result,
)

__all__ = ["GUARDRAILS", "VerdictMetrics"]

#: Guardrails the decision engine evaluates; touched at start so panels show them before data.
GUARDRAILS = ("error_rate", "latency_p95", "tokens")


class VerdictMetrics:
    """The rollout verdict gauges on ``registry``; :meth:`observe` each Decision."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.code = Gauge(
            "tunegate_verdict_code",
            "Rollout verdict of the latest decision: 1 success, 0 inconclusive, -1 failure",
            ["experiment"],
            registry=registry,
        )
        self.result = Gauge(
            "tunegate_verdict_result",
            "1 for the latest decision's rollout result, 0 for the others",
            ["experiment", "result"],
            registry=registry,
        )
        self.action = Gauge(
            "tunegate_verdict_action",
            "1 for the latest decision's action, 0 for the others",
            ["experiment", "action"],
            registry=registry,
        )
        self.guardrail = Gauge(
            "tunegate_verdict_guardrail",
            "1 for each guardrail's state in the latest decision (holds, breached, unproven)",
            ["experiment", "guardrail", "state"],
            registry=registry,
        )
        self.samples_needed = Gauge(
            "tunegate_verdict_samples_needed",
            "Samples still needed before the next step (0 unless the decision is continue)",
            ["experiment"],
            registry=registry,
        )
        self.timestamp = Gauge(
            "tunegate_verdict_timestamp_seconds",
            "Unix time of the latest decision",
            ["experiment"],
            registry=registry,
        )

    def touch(self, experiment: str) -> None:
        """Every series at its no-decision value: inconclusive, continue, guardrails unproven."""
        self.code.labels(experiment).set(0)
        for result in RolloutResult:
            self.result.labels(experiment, result.value).set(
                1.0 if result is RolloutResult.INCONCLUSIVE else 0.0
            )
        for action in Action:
            self.action.labels(experiment, action.value).set(
                1.0 if action is Action.CONTINUE else 0.0
            )
        for name in GUARDRAILS:
            for state in GUARDRAIL_STATES:
                self.guardrail.labels(experiment, name, state).set(
                    1.0 if state == "unproven" else 0.0
                )
        self.samples_needed.labels(experiment)
        self.timestamp.labels(experiment)

    def observe(self, decision: Decision) -> None:
        exp = decision.experiment
        result = rollout_result(decision, now=decision.time)
        self.code.labels(exp).set(result_code(result))
        for each in RolloutResult:
            self.result.labels(exp, each.value).set(1.0 if each is result else 0.0)
        for action in Action:
            self.action.labels(exp, action.value).set(1.0 if action is decision.action else 0.0)
        for name, state in guardrail_states(decision).items():
            for each_state in GUARDRAIL_STATES:
                self.guardrail.labels(exp, name, each_state).set(
                    1.0 if each_state == state else 0.0
                )
        self.samples_needed.labels(exp).set(decision.samples_needed or 0)
        self.timestamp.labels(exp).set(decision.time)
