"""Every statistic the decision table looks at, computed once from evidence and policy.

:func:`gather_checks` runs the judge gate, the per-category regression checks, the guardrails,
the SRM check, the judge-health and staleness checks and the live A/B test, and keeps their
results with the sentences that explain them. analysis/decide.py only reads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.evidence import Evidence
from analysis.gate import JudgeGate, judge_gate
from analysis.guardrails import (
    CategoryRegression,
    GuardrailResult,
    category_regressions,
    error_rate_guardrail,
    latency_p95_guardrail,
    tokens_guardrail,
)
from analysis.live import LiveResult, user_means, user_test
from analysis.multiple import holm
from analysis.proportions import category_summaries, paired_correctness, win_rate_summary
from analysis.srm import SrmResult, sample_ratio_mismatch
from tunegate.experiments import Policy
from tunegate.records import Arm, Stage

__all__ = ["MIN_HEALTH_SAMPLE", "Checks", "gather_checks"]

#: Judge-health shares are judged only once this many verdicts or dead letters exist.
MIN_HEALTH_SAMPLE = 20


@dataclass
class Checks:
    policy: Policy
    gate: JudgeGate
    categories: list[CategoryRegression]
    guardrails: list[GuardrailResult]
    srm: SrmResult | None
    live: dict[str, LiveResult]
    exposure: int
    evidence_json: dict[str, object]
    pause_reasons: list[str] = field(default_factory=list)
    rollback_reasons: list[str] = field(default_factory=list)

    @property
    def blocked_categories(self) -> list[CategoryRegression]:
        return [c for c in self.categories if c.beyond_tolerance or c.significant]

    @property
    def unproven_guardrails(self) -> list[str]:
        return [g.name for g in self.guardrails if g.n_candidate > 0 and not g.holds]

    def judge_sentence(self) -> str:
        g = self.gate
        return (
            f"The judge's win rate is {g.win_rate:.3f} over {g.n} pairs (always-valid"
            f" {1 - self.policy.alpha:.0%} interval {g.cs_lower:.3f}-{g.cs_upper:.3f},"
            f" lower bound {g.lower:.3f}, p = {g.p_value:.3g})."
        )

    def category_sentence(self) -> str:
        parts = [
            f"'{c.category}' (net {c.net:+.1%} over {c.n} pairs"
            + (", significant" if c.significant else "")
            + ")"
            for c in self.blocked_categories
        ]
        return (
            "Blocked: category regression beyond the"
            f" {self.policy.category_regression_tolerance:.0%} tolerance in {', '.join(parts)}."
        )

    def success(self, policy: Policy) -> tuple[bool, str]:
        judge_ok = self.gate.superior
        if policy.success_metric == "judge":
            return judge_ok, f"Judge superiority {'holds' if judge_ok else 'is not shown yet'}."
        if not self.live:
            return False, "No live feedback from both arms yet."
        if policy.success_metric == "live":
            rejected = holm({k: v.p_superior for k, v in self.live.items()}, policy.alpha)
            winners = [k for k, ok in rejected.items() if ok]
            if winners:
                return True, f"Live superiority (Holm) on: {', '.join(winners)}."
            return False, "Live superiority is not shown yet (Holm across live metrics)."
        non_inferior = all(v.p_noninferior <= policy.alpha for v in self.live.values())
        ok = judge_ok and non_inferior
        return ok, (
            f"Judge superiority {'holds' if judge_ok else 'is not shown'}; live metrics"
            f" {'are' if non_inferior else 'are not yet shown'} non-inferior."
        )

    def samples_needed(self, stage: Stage) -> int:
        need = self.gate.samples_needed
        if stage is Stage.AB:
            need = max(need, self.policy.min_exposure_per_stage - self.exposure)
        return max(0, need)

    def to_json(self) -> dict[str, object]:
        return {
            **self.evidence_json,
            "judge": self.gate.to_json(),
            "categories": [c.to_json() for c in self.categories],
            "guardrails": [g.to_json() for g in self.guardrails],
            "srm": self.srm.to_json() if self.srm else None,
            "live": {k: v.to_json() for k, v in self.live.items()},
            "exposure": self.exposure,
        }


def _clean(value: object) -> object:
    """JSON-safe: NaN and infinities become None, tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def gather_checks(
    policy: Policy, stage: Stage, weight: float, since: float, evidence: Evidence, now: float
) -> Checks:
    judge = evidence.judge
    gate = judge_gate(judge.scores, policy)
    categories = category_regressions(
        judge.scores, judge.categories, policy.category_regression_tolerance, policy.alpha
    )
    pairs = evidence.pairs
    in_stage = pairs.times >= since
    guardrails = _guardrails(evidence, policy)
    srm = None
    if stage is Stage.AB and 0 < weight < 1:
        served = pairs.served_candidate[in_stage]
        cand = int(served.sum())
        srm = sample_ratio_mismatch(int(served.size) - cand, cand, weight, policy.srm_threshold)
    exposure = int(pairs.served_candidate[in_stage].sum()) if stage is Stage.AB else 0
    live = _live(evidence, policy, since)
    extra: dict[str, object] = {
        "summary": win_rate_summary(judge.scores, policy.alpha).to_json(),
        "category_summaries": [
            c.to_json() for c in category_summaries(judge.scores, judge.categories, policy.alpha)
        ],
        "health": _health_json(evidence, now),
        "pairs": pairs.n,
    }
    known = ~np.isnan(judge.candidate_correct) & ~np.isnan(judge.control_correct)
    if known.any():
        extra["paired_correctness"] = paired_correctness(
            judge.candidate_correct[known], judge.control_correct[known]
        ).to_json()
    checks = Checks(policy, gate, categories, guardrails, srm, live, exposure, {})
    checks.evidence_json = extra
    checks.pause_reasons = _pause_reasons(evidence, policy, srm, now)
    checks.rollback_reasons = _rollback_reasons(checks)
    checks.evidence_json = _clean(extra)  # type: ignore[assignment]  # _clean keeps dicts dicts
    return checks


def _guardrails(evidence: Evidence, policy: Policy) -> list[GuardrailResult]:
    p = evidence.pairs
    if p.n == 0:
        return []
    err = {arm: p.errors[arm][~np.isnan(p.errors[arm])] for arm in Arm}
    lat = {arm: p.latency[arm][~np.isnan(p.latency[arm])] for arm in Arm}
    tok = {arm: p.tokens[arm][~np.isnan(p.tokens[arm])] for arm in Arm}
    ctrl, cand = Arm.CONTROL, Arm.CANDIDATE
    results = [
        error_rate_guardrail(
            int(err[ctrl].sum()),
            err[ctrl].size,
            int(err[cand].sum()),
            err[cand].size,
            policy.error_rate_margin,
            policy.alpha,
        ),
        latency_p95_guardrail(lat[ctrl], lat[cand], policy.latency_p95_margin, policy.alpha),
    ]
    if min(tok[ctrl].size, tok[cand].size) >= 2:
        results.append(tokens_guardrail(tok[ctrl], tok[cand], policy.tokens_margin, policy.alpha))
    return results


def _live(evidence: Evidence, policy: Policy, since: float) -> dict[str, LiveResult]:
    fb = evidence.feedback
    out: dict[str, LiveResult] = {}
    for label in sorted(set(fb.labels)):
        idx = [i for i, lab in enumerate(fb.labels) if lab == label and fb.times[i] >= since]
        means = user_means([fb.arms[i] for i in idx], fb.values[idx], [fb.users[i] for i in idx])
        ctrl = list(means.get(Arm.CONTROL.value, {}).values())
        cand = list(means.get(Arm.CANDIDATE.value, {}).values())
        if min(len(ctrl), len(cand)) >= 2:
            out[label] = user_test(ctrl, cand, policy.live_margin)
    return out


def _health_json(evidence: Evidence, now: float) -> dict[str, object]:
    judge = evidence.judge
    last = evidence.last_time
    return {
        "pairwise_verdicts": judge.pairwise,
        "inconsistent": judge.inconsistent,
        "dead_letters": evidence.dead_letters,
        "bad_entries": evidence.bad_entries,
        "age_seconds": (now - last) if last is not None else None,
    }


def _pause_reasons(
    evidence: Evidence, policy: Policy, srm: SrmResult | None, now: float
) -> list[str]:
    reasons = []
    last = evidence.last_time
    if last is not None and now - last > policy.stale_after_seconds:
        reasons.append(
            f"the newest evidence is {now - last:.0f} s old (stale after"
            f" {policy.stale_after_seconds:.0f} s)."
        )
    judge = evidence.judge
    if judge.pairwise >= MIN_HEALTH_SAMPLE:
        share = judge.inconsistent / judge.pairwise
        if share > policy.max_judge_inconsistency:
            reasons.append(
                f"the judge disagrees with itself when the order is swapped on {share:.0%} of"
                f" pairs (limit {policy.max_judge_inconsistency:.0%})."
            )
    total = evidence.dead_letters + judge.n
    if total >= MIN_HEALTH_SAMPLE and evidence.dead_letters / total > policy.max_dead_letter_share:
        reasons.append(
            f"{evidence.dead_letters} of {total} pairs went to the dead-letter stream"
            f" (limit {policy.max_dead_letter_share:.0%})."
        )
    if srm is not None and srm.mismatch:
        reasons.append(
            f"sample-ratio mismatch: the candidate served {srm.observed_candidate_share:.1%}"
            f" of requests against {srm.expected_candidate_share:.1%} configured"
            f" (chi-square p = {srm.p_value:.2g}); no verdict is trusted until it is fixed."
        )
    return reasons


def _rollback_reasons(c: Checks) -> list[str]:
    reasons = []
    if c.gate.inferior:
        reasons.append(
            f"the judge's upper bound {c.gate.cs_upper:.3f} is below"
            f" {0.5 - c.policy.loss_margin:.3f} (0.5 - loss margin)."
        )
    for g in c.guardrails:
        if g.breached:
            reasons.append(
                f"guardrail {g.name} is breached: candidate {g.candidate:.4g} against control"
                f" {g.control:.4g}, margin {g.margin:g} (p = {g.p_breach:.3g})."
            )
    for cat in c.categories:
        if cat.significant:
            reasons.append(
                f"category '{cat.category}' regresses significantly: net {cat.net:+.1%} over"
                f" {cat.n} pairs beyond the {cat.tolerance:.0%} tolerance"
                f" (Holm p = {cat.p_regression:.3g})."
            )
    return reasons
