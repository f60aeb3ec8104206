"""The decision table: policy + evidence -> Decision (continue, start A/B, ramp, promote, ...).

Order of the table, first match wins:
1. terminal stages (promoted, rolled back) stay; a paused experiment waits for an operator;
2. pause on stale data, judge health failure (swap inconsistency, dead letters) or SRM;
3. roll back when an always-valid roll-back test fires (judge loss, category regression, a
   guardrail breach); each has its own minimum sample and is valid from it on, so a clear loss
   rolls back before the burn-in ends without a fixed-sample test ever acting early;
4. continue during the burn-in;
5. stop-equivalent when the judge interval sits inside the equivalence margin;
6. shadow: start A/B when the judge gate passes and no category regresses;
7. A/B: ramp when the stage's exposure is met and guardrails hold; at the last weight, promote
   when the success metric is superior and every guardrail holds;
8. otherwise continue, with ``samples_needed``.
"""

from __future__ import annotations

from analysis.decide_checks import Checks, gather_checks
from analysis.evidence import Evidence
from analysis.offline.gate_check import offline_hold
from tunegate.experiments import ExperimentConfig, Policy
from tunegate.records import Action, Decision, ExperimentState, OfflineResult, Stage

__all__ = ["decide", "decide_with_checks", "live_stage"]

_TERMINAL = (Stage.PROMOTED, Stage.ROLLED_BACK)


def live_stage(
    experiment: ExperimentConfig, state: ExperimentState | None
) -> tuple[Stage, float, float]:
    """The stage, A/B weight and stage start the live state gives (the config's before any)."""
    if state is None:
        return experiment.stage, experiment.ab_weight, 0.0
    return state.stage, state.ab_weight, state.updated_at


def decide(
    experiment: ExperimentConfig,
    state: ExperimentState | None,
    evidence: Evidence,
    now: float,
    offline: OfflineResult | None = None,
) -> Decision:
    """Pure: the decision for ``experiment`` given its live state and evidence at ``now``."""
    stage, weight, since = live_stage(experiment, state)
    policy = experiment.policy
    checks = gather_checks(policy, stage, weight, since, evidence, now, len(experiment.ramp))
    return decide_with_checks(experiment, state, checks, now, offline)


def decide_with_checks(
    experiment: ExperimentConfig,
    state: ExperimentState | None,
    checks: Checks,
    now: float,
    offline: OfflineResult | None = None,
) -> Decision:
    """The decision table on checks gathered already (from evidence, or from the running state
    of analysis/decide_state.py)."""
    stage = state.stage if state is not None else experiment.stage
    weight = state.ab_weight if state is not None else experiment.ab_weight
    action, stage_after, weight_after, reasons = _table(experiment, stage, weight, checks)
    if action is Action.START_AB and (hold := offline_hold(experiment, offline)):
        action, stage_after, weight_after, reasons = (
            Action.CONTINUE,
            stage,
            weight,
            [*reasons[:1], hold],
        )
    needed = checks.samples_needed(stage) if action is Action.CONTINUE else None
    if needed is not None:
        reasons.append(f"About {needed} more samples are likely needed.")
    return Decision(
        experiment=experiment.name,
        time=now,
        action=action,
        stage_before=stage,
        stage_after=stage_after,
        weight_before=weight,
        weight_after=weight_after,
        evidence=checks.to_json(),
        reasons=reasons,
        reason=" ".join(reasons),
        samples_needed=needed,
    )


Row = tuple[Action, Stage, float, list[str]]


def _table(experiment: ExperimentConfig, stage: Stage, weight: float, c: Checks) -> Row:
    policy = experiment.policy
    if stage in _TERMINAL:
        return Action.CONTINUE, stage, weight, [f"The experiment is {stage.value}; nothing to do."]
    if c.pause_reasons:
        return Action.PAUSE, Stage.PAUSED, weight, ["Paused:", *c.pause_reasons]
    if stage is Stage.PAUSED:
        return (
            Action.CONTINUE,
            stage,
            weight,
            [
                "The experiment is paused and its checks pass now; an operator can resume it"
                " with `tunegate state`."
            ],
        )
    if c.rollback_reasons:
        return Action.ROLL_BACK, Stage.ROLLED_BACK, 0.0, ["Roll back:", *c.rollback_reasons]
    summary = c.judge_sentence()
    if c.gate.n < policy.min_pairs:
        return (
            Action.CONTINUE,
            stage,
            weight,
            [f"Burn-in: {c.gate.n} of {policy.min_pairs} judged pairs so far.", summary],
        )
    if c.gate.equivalent:
        return (
            Action.STOP_EQUIVALENT,
            Stage.ROLLED_BACK,
            0.0,
            [
                summary,
                f"The interval lies within 0.5 +- {policy.equivalence_margin}: the candidate is"
                " equivalent to the control: the experiment stops and the control keeps serving.",
            ],
        )
    if stage is Stage.SHADOW:
        return _shadow(experiment, stage, weight, c, summary)
    return _ab(experiment, stage, weight, c, summary)


def _shadow(
    experiment: ExperimentConfig, stage: Stage, weight: float, c: Checks, summary: str
) -> Row:
    policy = experiment.policy
    if not c.judge_superior:
        return Action.CONTINUE, stage, weight, [summary, _not_yet(policy)]
    if c.blocked_categories:
        return Action.CONTINUE, stage, weight, [summary, c.category_sentence()]
    first = experiment.ramp[0]
    return (
        Action.START_AB,
        Stage.AB,
        first,
        [
            summary,
            "No category regresses beyond the tolerance.",
            f"Start the A/B split at {first:.0%} of users.",
        ],
    )


def _ab(experiment: ExperimentConfig, stage: Stage, weight: float, c: Checks, summary: str) -> Row:
    policy = experiment.policy
    reasons = [summary]
    if c.exposure < policy.min_exposure_per_stage:
        reasons.append(
            f"The candidate served {c.exposure} requests at {weight:.0%}; the stage needs"
            f" {policy.min_exposure_per_stage}."
        )
        return Action.CONTINUE, stage, weight, reasons
    if c.blocked_categories:
        return Action.CONTINUE, stage, weight, [*reasons, c.category_sentence()]
    if c.unproven_guardrails and weight >= experiment.ramp[-1]:
        names = ", ".join(c.unproven_guardrails)
        reasons.append(f"Non-inferiority is not yet shown for: {names}.")
        return Action.CONTINUE, stage, weight, reasons
    next_weights = [w for w in experiment.ramp if w > weight]
    if next_weights:
        reasons.append(
            f"Exposure met ({c.exposure} requests) and no guardrail is breached: ramp from"
            f" {weight:.0%} to {next_weights[0]:.0%}."
        )
        return Action.RAMP, stage, next_weights[0], reasons
    superior, sentence = c.success(policy)
    reasons.append(sentence)
    if not superior:
        return Action.CONTINUE, stage, weight, reasons
    reasons.append("Every guardrail holds: promote the candidate to all traffic.")
    return Action.PROMOTE, Stage.PROMOTED, 1.0, reasons


def _not_yet(policy: Policy) -> str:
    return (
        f"The judge has not yet shown a win rate above {policy.win_rate_bar:.2f}"
        f" at alpha {policy.alpha}."
    )
