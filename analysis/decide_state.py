"""The decision's checks from the running state alone: no row, no array of history is read.

:func:`checks_from_state` builds the same :class:`analysis.decide_checks.Checks` as
:func:`analysis.decide_checks.gather_checks`, from an :class:`analysis.evidence_state.DecisionState`
(O(categories) work, whatever the number of judged pairs), so :func:`decide_from_state` runs the
same decision table. Everything equals the array version to rounding (tests/analysis/
test_decision_state.py) except two documented differences:

- the latency p95 bounds come from the state's fixed log-spaced histogram (analysis/running.py:
  valid, at most one 3.7 % bin wider per side) and its estimate is interpolated in its bin;
- the judge paths for the report's plot are empty (``tunegate report`` reads the rows).

The live feedback test still reads the feedback rows (per-user means: a few per user), and the
judge-corrected estimate needs the labelled rows: with human labels the controller reads rows.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.budget import alpha_for
from analysis.decide import decide_with_checks, live_stage
from analysis.decide_checks import (
    Checks,
    Health,
    health_json,
    live_checks,
    pause_reasons,
    rollback_reasons,
    srm_alpha,
)
from analysis.evidence import FeedbackEvidence
from analysis.evidence_state import DecisionState
from analysis.gate import JudgeGate, empty_gate, lower_bound_at, projected_need
from analysis.guardrails import CategoryRegression, GuardrailResult
from analysis.multiple import adjust
from analysis.power import PLANNING_SD
from analysis.proportions import (
    CategorySummary,
    correctness_from_counts,
    summary_from_counts,
)
from analysis.quantiles import quantile_ranks
from analysis.running import (
    AsymptoticRun,
    EmpiricalBernsteinRun,
    LatencyHistogram,
    asymptotic_bounds,
)
from analysis.srm import SrmResult
from tunegate.experiments import ExperimentConfig, Policy
from tunegate.records import Decision, ExperimentState, OfflineResult, Stage

__all__ = ["checks_from_state", "decide_from_state"]

_EMPTY = np.zeros(0)


def decide_from_state(
    experiment: ExperimentConfig,
    state: ExperimentState | None,
    running: DecisionState,
    feedback: FeedbackEvidence,
    counters: dict[str, int],
    now: float,
    offline: OfflineResult | None = None,
) -> Decision:
    """:func:`analysis.decide.decide` on the running state (and the feedback rows)."""
    stage, weight, since = live_stage(experiment, state)
    checks = checks_from_state(
        experiment.policy, stage, weight, since, running, feedback, counters, now,
        len(experiment.ramp),
    )  # fmt: skip
    return decide_with_checks(experiment, state, checks, now, offline)


def _interval(
    run: AsymptoticRun, eb: EmpiricalBernsteinRun, t: float, mean: float, var: float, burn: int
) -> tuple[float, float, float, float]:
    """(lower, upper) in force and this look's own, as analysis/gate.py's ``_intersected``."""
    if t < burn:
        return eb.lower, eb.upper, eb.lower, eb.upper
    lo, hi = asymptotic_bounds(t, mean, var, run.alpha, run.planned)
    return (
        max(run.lower, 0.0), min(run.upper, 1.0), max(float(lo), 0.0), min(float(hi), 1.0),
    )  # fmt: skip


def gate_from_state(s: DecisionState, policy: Policy) -> JudgeGate:
    n = s.judge.n
    if n == 0:
        return empty_gate(policy)
    burn = policy.min_pairs
    a_sup = alpha_for(policy, "judge_superiority")
    a_loss = alpha_for(policy, "judge_loss")
    a_eq = alpha_for(policy, "judge_equivalence")
    t, mean_r, var = s.judge.last()
    mean = s.judge.mean
    sd = s.judge.std if n > 1 else PLANNING_SD
    lo, hi, now_lo, now_hi = _interval(s.as_alpha, s.eb_alpha, t, mean_r, var, burn)
    eq_lo, eq_hi, _, _ = _interval(s.as_eq, s.eb_eq, t, mean_r, var, burn)
    p_value = s.msprt.p_value
    superior = n >= burn and p_value <= a_sup
    loss_p = s.loss.p_value
    margin = policy.equivalence_margin
    return JudgeGate(
        n=n,
        win_rate=mean,
        sd=sd,
        lower=lower_bound_at(n, mean_r, var, a_sup, policy),
        cs_lower=lo,
        cs_upper=hi,
        current_lower=now_lo,
        current_upper=now_hi,
        cs_method="asymptotic" if n >= burn else "empirical_bernstein",
        p_value=p_value,
        superior=superior,
        loss_p_value=loss_p,
        inferior=n >= policy.min_rollback_pairs and loss_p <= a_loss,
        equivalence_interval=(eq_lo, eq_hi),
        equivalent=n >= burn and 0.5 - margin <= eq_lo and eq_hi <= 0.5 + margin,
        samples_needed=0 if superior else max(burn - n, projected_need(n, mean, sd, policy)),
        alpha_superiority=a_sup,
        alpha_loss=a_loss,
        alpha_equivalence=a_eq,
        path_lower=_EMPTY,
        path_upper=_EMPTY,
        path_mean=_EMPTY,
    )


def categories_from_state(s: DecisionState, policy: Policy) -> list[CategoryRegression]:
    tolerance = policy.category_regression_tolerance
    alpha = alpha_for(policy, "categories")
    names = sorted(s.categories)
    raw = [s.categories[name].test.p_value for name in names]
    adjusted = adjust(raw, alpha, method="holm") if names else []
    out = []
    for name, p, q in zip(names, raw, adjusted, strict=True):
        c = s.categories[name].sums
        net = 2 * c.mean - 1
        se = max(2 * c.std, 0.5) / math.sqrt(c.n)
        out.append(
            CategoryRegression(
                name, c.n, net, tolerance, net < -tolerance, p, q,
                c.n >= policy.min_rollback_pairs and q <= alpha, alpha,
                policy.min_rollback_pairs, se,
            )
        )  # fmt: skip
    return out


def _category_summaries(s: DecisionState, alpha: float) -> list[CategorySummary]:
    names = sorted(s.categories)
    summaries = [
        summary_from_counts(c.sums.n, c.wins, c.losses, c.sums.mean, alpha)
        for c in (s.categories[name] for name in names)
    ]
    q_values = adjust([x.sign_test_p for x in summaries], alpha, method="fdr_bh")
    return [CategorySummary(n, x, q) for n, x, q in zip(names, summaries, q_values, strict=True)]


def _latency(
    s: DecisionState, margin: float, alpha: float, min_sample: int, slack_s: float = 0.0
) -> GuardrailResult:
    def bounds(h: LatencyHistogram) -> tuple[float, float, float]:
        n = h.n
        if n == 0:
            return -math.inf, math.nan, math.inf
        lo, hi = quantile_ranks(n, 0.95, alpha / 2)
        return h.bounds(0.95, lo, hi)

    ctrl, cand = s.latency["control"], s.latency["candidate"]
    c_lo, c_est, c_hi = bounds(ctrl)
    k_lo, k_est, k_hi = bounds(cand)
    limit = 1 + margin
    enough = min(ctrl.n, cand.n) >= min_sample
    ratio = (k_lo / c_hi if c_hi > 0 else math.nan, k_hi / c_lo if c_lo > 0 else math.inf)
    return GuardrailResult(
        "latency_p95", c_est, k_est, margin, bool(enough and k_lo > limit * c_hi + slack_s),
        bool(enough and k_hi <= limit * c_lo + slack_s), None, None, ctrl.n, cand.n, alpha,
        "quantile_cs_histogram", min_sample, (float(ratio[0]), float(ratio[1])),
    )  # fmt: skip


def guardrails_from_state(s: DecisionState, policy: Policy) -> list[GuardrailResult]:
    if s.pairs == 0:
        return []
    a_err, minimum = alpha_for(policy, "error_rate"), policy.min_rollback_pairs
    n, margin = s.err_n, policy.error_rate_margin
    if n == 0:
        error = GuardrailResult(
            "error_rate", 0.0, 0.0, margin, False, False, 1.0, 1.0, 0, 0, a_err, "betting",
            minimum,
        )  # fmt: skip
    else:
        if s.err_breach is not None and s.err_within is not None:
            p_breach, p_within = s.err_breach.p_value, s.err_within.p_value
        else:  # a margin of 100 % or more cannot be breached and always holds
            p_breach, p_within = 1.0, 0.0
        enough = n >= minimum
        error = GuardrailResult(
            "error_rate", s.err_control / n, s.err_candidate / n, margin,
            enough and p_breach <= a_err, enough and p_within <= a_err, p_breach, p_within,
            n, n, a_err, "betting", minimum,
        )  # fmt: skip
    out = [
        error,
        _latency(
            s,
            policy.latency_p95_margin,
            alpha_for(policy, "latency_p95"),
            minimum,
            policy.latency_p95_slack_s,
        ),
    ]
    k = s.tokens.n
    if k >= 2:
        lower, upper = s.tok_run.lower, s.tok_run.upper
        enough = k >= policy.min_pairs
        out.append(
            GuardrailResult(
                "tokens", s.tok_control / k, s.tok_candidate / k, policy.tokens_margin,
                enough and lower > 0, enough and upper < 0, None, None, k, k,
                alpha_for(policy, "tokens"), "confidence_sequence", policy.min_pairs,
                (lower, upper),
            )
        )  # fmt: skip
    return out


def checks_from_state(
    policy: Policy,
    stage: Stage,
    weight: float,
    since: float,
    s: DecisionState,
    feedback: FeedbackEvidence,
    counters: dict[str, int],
    now: float,
    ramp_steps: int = 4,
) -> Checks:
    """The checks of :func:`analysis.decide_checks.gather_checks`, from the state.

    The state's SRM counts must be those of this stage (``DecisionState.stage(since, weight)``
    before the fold); ``counters`` are the store's health counters.
    """
    gate = gate_from_state(s, policy)
    categories = categories_from_state(s, policy)
    srm = None
    in_stage = (s.srm.since, s.srm.weight) == (since, weight)
    if stage is Stage.AB and 0 < weight < 1:
        if not in_stage:
            raise ValueError("the state's SRM counts are not this stage's: call stage() first")
        a = srm_alpha(policy, ramp_steps)
        total, cand = s.srm.n, s.srm.candidate
        p_value = min(1.0, math.exp(-max(0.0, s.srm.best))) if total else 1.0
        srm = SrmResult(
            total - cand, cand, weight, cand / total if total else 0.0, p_value, a,
            policy.min_rollback_pairs, total >= policy.min_rollback_pairs and p_value <= a,
        )  # fmt: skip
    exposure = s.srm.candidate if stage is Stage.AB else 0
    health = Health(
        s.last_time, s.judge.n, counters.get("pairwise", 0), counters.get("inconsistent", 0),
        counters.get("bad_scores", 0), counters.get("dead_letters", 0),
        counters.get("bad_entries", 0),
    )  # fmt: skip
    summary = summary_from_counts(s.judge.n, s.wins, s.losses, s.judge.mean, policy.alpha)
    extra: dict[str, object] = {
        "summary": summary.to_json(),
        "category_summaries": [c.to_json() for c in _category_summaries(s, policy.alpha)],
        "health": health_json(health, now),
        "pairs": s.pairs,
    }
    c = s.correct
    if c["n"]:
        extra["paired_correctness"] = correctness_from_counts(
            c["n"], c["candidate"], c["control"], c["candidate_only"], c["control_only"]
        ).to_json()
    live = live_checks(feedback, policy, since)
    guardrails = guardrails_from_state(s, policy)
    checks = Checks(policy, gate, categories, guardrails, srm, live, exposure, extra)
    checks.pause_reasons = pause_reasons(health, policy, srm, now)
    checks.rollback_reasons = rollback_reasons(checks)
    return checks
