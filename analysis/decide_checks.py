"""Every statistic the decision table looks at, computed once from evidence and policy.

:func:`gather_checks` runs the judge gate, the per-category regression tests, the guardrails,
the SRM test, the judge-health and staleness checks and the live A/B test, and keeps their
results with the sentences that explain them. analysis/decide.py only reads these. Every test
that can change a stage is always-valid, has its own minimum sample and spends its own share of
alpha (analysis/budget.py); :meth:`Checks.outcomes` lists them all for the Decision's evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.budget import SHARES, TestOutcome, alpha_for
from analysis.evidence import Evidence, FeedbackEvidence
from analysis.gate import JudgeGate, judge_gate, planned_n
from analysis.guardrails import (
    CategoryRegression,
    GuardrailResult,
    category_regressions,
    error_rate_guardrail,
    latency_p95_guardrail,
    tokens_guardrail,
)
from analysis.live import SequentialLive, live_sequential, user_means
from analysis.ppi import CorrectedEstimate, corrected_win_rate
from analysis.proportions import category_summaries, paired_correctness, win_rate_summary
from analysis.quantiles import upper_bound_from
from analysis.srm import SrmResult, sample_ratio_mismatch
from tunegate.experiments import Policy
from tunegate.records import Arm, Stage

__all__ = [
    "MIN_HEALTH_SAMPLE",
    "Checks",
    "Health",
    "corrected_estimate",
    "gather_checks",
    "health_json",
    "pause_reasons",
    "rollback_reasons",
]

#: Judge-health shares are judged only once this many verdicts or dead letters exist.
MIN_HEALTH_SAMPLE = 20


@dataclass
class Checks:
    policy: Policy
    gate: JudgeGate
    categories: list[CategoryRegression]
    guardrails: list[GuardrailResult]
    srm: SrmResult | None
    live: dict[str, SequentialLive]
    exposure: int
    evidence_json: dict[str, object]
    pause_reasons: list[str] = field(default_factory=list)
    rollback_reasons: list[str] = field(default_factory=list)
    corrected: CorrectedEstimate | None = None

    @property
    def judge_superior(self) -> bool:
        """Judge superiority as the policy reads it: the raw judge's test or the corrected bound."""
        if self.policy.judge_estimate == "raw":
            return self.gate.superior
        c = self.corrected
        return (
            c is not None
            and c.labelled >= self.policy.min_labels
            and c.cs_lower > self.policy.win_rate_bar  # the always-valid bound, never the fixed
        )

    def corrected_sentence(self) -> str:
        c, policy = self.corrected, self.policy
        drives = policy.judge_estimate == "corrected"
        if c is None:
            return " No human labels yet for the judge-corrected estimate." if drives else ""
        short = (
            f" It decides once {policy.min_labels} pairs are labelled."
            if drives and c.labelled < policy.min_labels
            else ""
        )
        bound = (
            f" Its always-valid lower bound {c.cs_lower:.3f} (alpha {c.alpha / 2:.3g}) is what"
            " decides."
            if drives
            else ""
        )
        return (
            f" Corrected by {c.labelled} human labels it is {c.estimate:.3f}"
            f" (fixed-sample {1 - c.alpha:.0%} interval {c.lower:.3f}-{c.upper:.3f}, valid at"
            f" one look; always-valid {c.cs_lower:.3f}-{c.cs_upper:.3f}; judge and people agree"
            f" on {c.agreement:.0%} of them).{bound}{short}"
        )

    @property
    def blocked_categories(self) -> list[CategoryRegression]:
        return [c for c in self.categories if c.blocks]

    @property
    def unproven_guardrails(self) -> list[str]:
        return [g.name for g in self.guardrails if g.n_candidate > 0 and not g.holds]

    def judge_sentence(self) -> str:
        g = self.gate
        drift = (
            " The interval is the running intersection of every look's interval and no longer"
            f" contains the estimate (this look alone: {g.current_lower:.3f}-"
            f"{g.current_upper:.3f}): the win rate has drifted over time."
            if g.estimate_outside
            else ""
        )
        return (
            f"The judge's win rate is {g.win_rate:.3f} over {g.n} pairs (always-valid"
            f" {1 - self.policy.alpha:.0%} interval {g.cs_lower:.3f}-{g.cs_upper:.3f},"
            f" lower bound {g.lower:.3f}, p = {g.p_value:.3g} against alpha"
            f" {g.alpha_superiority:.3g}).{drift}{self.corrected_sentence()}"
        )

    def category_sentence(self) -> str:
        parts = [
            f"'{c.category}' (net {c.net:+.1%} +- {c.std_error:.1%} over {c.n} pairs"
            + (", significant" if c.significant else "")
            + (f", regression p = {c.p_raw:.2g}" if c.mounting and not c.significant else "")
            + ")"
            for c in self.blocked_categories
        ]
        return (
            "Blocked: a category regression beyond the"
            f" {self.policy.category_regression_tolerance:.0%} tolerance is plausible in"
            f" {', '.join(parts)}."
        )

    def success(self, policy: Policy) -> tuple[bool, str]:
        judge_ok = self.judge_superior
        if policy.success_metric == "judge":
            return judge_ok, f"Judge superiority {'holds' if judge_ok else 'is not shown yet'}."
        if not self.live:
            return False, "No live feedback from both arms yet."
        if policy.success_metric == "live":
            winners = [k for k, v in self.live.items() if v.superior]
            if winners:
                names = ", ".join(winners)
                return True, f"Live superiority (always-valid, Bonferroni) on: {names}."
            return False, "Live superiority is not shown yet (always-valid, Bonferroni)."
        non_inferior = all(v.noninferior for v in self.live.values())
        ok = judge_ok and non_inferior
        return ok, (
            f"Judge superiority {'holds' if judge_ok else 'is not shown'}; live metrics"
            f" {'are' if non_inferior else 'are not yet shown'} non-inferior."
        )

    def samples_needed(self, stage: Stage) -> int:
        need = self.gate.samples_needed
        if stage is Stage.AB:
            need = max(need, self.policy.min_exposure_per_stage - self.exposure)
        # in the A/B stage (where guardrails must hold to promote) a latency guardrail cannot
        # hold before its quantile has an upper bound at all
        for g in self.guardrails if stage is Stage.AB else []:
            if g.method.startswith("quantile_cs") and not g.holds and g.n_candidate > 0:
                n = min(g.n_control, g.n_candidate)
                need = max(need, upper_bound_from(n, 0.95, g.alpha / 2) - n)
        # a blocking category's own pairs, scaled by its share of the traffic: with the judge
        # already superior, its block is what the next look waits for
        total = sum(c.n for c in self.categories)
        for category in self.blocked_categories:
            more = category.pairs_to_clear()
            if more is not None and category.n:
                need = max(need, math.ceil(more * total / category.n))
        return max(0, need)

    def outcomes(self) -> list[TestOutcome]:
        """Every test that can change a stage: statistic, p or interval, alpha, fired."""
        return _outcomes(self)

    def to_json(self) -> dict[str, object]:
        tests = [t.to_json() for t in self.outcomes()]
        return _clean(
            {
                **self.evidence_json,
                "judge": self.gate.to_json(),
                "corrected": self.corrected.to_json() if self.corrected else None,
                "categories": [c.to_json() for c in self.categories],
                "guardrails": [g.to_json() for g in self.guardrails],
                "srm": self.srm.to_json() if self.srm else None,
                "live": {k: v.to_json() for k, v in self.live.items()},
                "exposure": self.exposure,
                "tests": tests,
                "alpha": {
                    "total": self.policy.alpha,
                    "shares": {name: alpha_for(self.policy, name) for name in SHARES},
                    "srm_per_stage": self.srm.alpha if self.srm else None,
                },
            }
        )  # type: ignore[return-value]  # _clean keeps dicts dicts


def _outcomes(c: Checks) -> list[TestOutcome]:
    g, p = c.gate, c.policy
    out = [
        TestOutcome(
            "judge_superiority", "start_ab/promote", "msprt", f"win rate <= {p.win_rate_bar}",
            g.win_rate, g.p_value, (g.lower, 1.0), g.alpha_superiority, g.n, p.min_pairs,
            g.superior,
        ),
        TestOutcome(
            "judge_loss", "roll_back", "betting", f"win rate >= {0.5 - p.loss_margin:g}",
            g.win_rate, g.loss_p_value, None, g.alpha_loss, g.n, p.min_rollback_pairs,
            g.inferior,
        ),
        TestOutcome(
            "judge_equivalence", "stop_equivalent", "confidence_sequence",
            f"win rate outside 0.5 +- {p.equivalence_margin:g}", g.win_rate, None,
            g.equivalence_interval, g.alpha_equivalence, g.n, p.min_pairs, g.equivalent,
        ),
    ]  # fmt: skip
    corrected = c.corrected
    if p.judge_estimate == "corrected" and corrected is not None:
        out.append(
            TestOutcome(
                "judge_superiority_corrected", "start_ab/promote", "ppi_asymptotic_cs",
                f"win rate <= {p.win_rate_bar}", corrected.estimate, None,
                (corrected.cs_lower, 1.0), corrected.alpha / 2, corrected.labelled,
                p.min_labels, c.judge_superior,
            )
        )  # fmt: skip
    for cat in c.categories:
        out.append(
            TestOutcome(
                f"category:{cat.category}",
                "roll_back",
                "betting+holm",
                f"net >= -{cat.tolerance:g}",
                cat.net,
                cat.p_regression,
                None,
                cat.alpha,
                cat.n,
                cat.min_sample,
                cat.significant,
            )
        )
    for gr in c.guardrails:
        estimate = gr.candidate - gr.control if gr.name == "error_rate" else gr.candidate
        for side, acts, fired, pv in (
            ("breach", "roll_back", gr.breached, gr.p_breach),
            ("holds", "allows promote", gr.holds, gr.p_noninferior),
        ):
            out.append(
                TestOutcome(
                    f"guardrail:{gr.name}:{side}",
                    acts,
                    gr.method,
                    f"{'within' if side == 'breach' else 'beyond'} margin {gr.margin:g}",
                    estimate,
                    pv,
                    gr.interval,
                    gr.alpha,
                    min(gr.n_control, gr.n_candidate),
                    gr.min_sample,
                    fired,
                )
            )
    if c.srm is not None:
        s = c.srm
        out.append(
            TestOutcome(
                "srm",
                "pause",
                "dirichlet_multinomial",
                f"candidate share = {s.expected_candidate_share:g}",
                s.observed_candidate_share,
                s.p_value,
                None,
                s.alpha,
                s.control + s.candidate,
                s.min_sample,
                s.mismatch,
            )
        )
    for label, live in c.live.items():
        out.append(
            TestOutcome(
                f"live:{label}",
                "promote",
                "confidence_sequence",
                "difference <= 0",
                live.difference,
                None,
                (live.lower, live.upper),
                live.alpha,
                min(live.users_control, live.users_candidate),
                live.min_users,
                live.superior,
            )
        )
    return out


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
    policy: Policy,
    stage: Stage,
    weight: float,
    since: float,
    evidence: Evidence,
    now: float,
    ramp_steps: int = 4,
) -> Checks:
    judge = evidence.judge
    gate = judge_gate(judge.scores, policy)
    categories = category_regressions(
        judge.scores,
        judge.categories,
        policy.category_regression_tolerance,
        alpha_for(policy, "categories"),
        policy.min_rollback_pairs,
    )
    pairs = evidence.pairs
    in_stage = pairs.times >= since
    guardrails = _guardrails(evidence, policy)
    srm = None
    if stage is Stage.AB and 0 < weight < 1:
        srm = sample_ratio_mismatch(
            pairs.served_candidate[in_stage],
            weight,
            srm_alpha(policy, ramp_steps),
            policy.min_rollback_pairs,
        )
    exposure = int(pairs.served_candidate[in_stage].sum()) if stage is Stage.AB else 0
    live = live_checks(evidence.feedback, policy, since)
    extra: dict[str, object] = {
        "summary": win_rate_summary(judge.scores, policy.alpha).to_json(),
        "category_summaries": [
            c.to_json() for c in category_summaries(judge.scores, judge.categories, policy.alpha)
        ],
        "health": health_json(Health.of(evidence), now),
        "pairs": pairs.n,
    }
    known = ~np.isnan(judge.candidate_correct) & ~np.isnan(judge.control_correct)
    if known.any():
        extra["paired_correctness"] = paired_correctness(
            judge.candidate_correct[known], judge.control_correct[known]
        ).to_json()
    checks = Checks(policy, gate, categories, guardrails, srm, live, exposure, extra)
    checks.corrected = corrected_estimate(evidence, policy)
    checks.pause_reasons = pause_reasons(Health.of(evidence), policy, srm, now)
    checks.rollback_reasons = rollback_reasons(checks)
    return checks


def corrected_estimate(evidence: Evidence, policy: Policy) -> CorrectedEstimate | None:
    """PPI++ on the labelled judged pairs; its always-valid lower bound (``cs_lower``) spends
    the judge-superiority share; the fixed-sample interval is only shown."""
    human = evidence.labels.latest()
    judge = evidence.judge
    if not human or len(judge.pair_ids) != judge.n:  # no labels, or rows without pair ids
        return None
    mask = np.fromiter((pid in human for pid in judge.pair_ids), dtype=bool, count=judge.n)
    if mask.sum() < 2:
        return None
    ids = [pid for pid, hit in zip(judge.pair_ids, mask, strict=True) if hit]
    return corrected_win_rate(
        np.array([human[pid] for pid in ids], dtype=np.float64),
        judge.scores[mask],
        judge.scores[~mask],
        2 * alpha_for(policy, "judge_superiority"),  # two-sided, so the lower bound is one-sided
        planned_labels=policy.min_labels,  # fixed in advance: the CS is tightest there
        planned_pairs=planned_n(policy),
    )


def srm_alpha(policy: Policy, ramp_steps: int) -> float:
    """One SRM test per ramp step, each with an equal part of the share (capped by the policy)."""
    return min(alpha_for(policy, "srm"), policy.srm_threshold) / max(ramp_steps, 1)


def _both(values: dict[Arm, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Control and candidate values of the pairs where both arms have one, in time order."""
    ctrl, cand = values[Arm.CONTROL], values[Arm.CANDIDATE]
    both = ~np.isnan(ctrl) & ~np.isnan(cand)
    return ctrl[both], cand[both]


def _guardrails(evidence: Evidence, policy: Policy) -> list[GuardrailResult]:
    p = evidence.pairs
    if p.n == 0:
        return []
    lat = {arm: p.latency[arm][~np.isnan(p.latency[arm])] for arm in Arm}
    err_ctrl, err_cand = _both(p.errors)
    tok_ctrl, tok_cand = _both(p.tokens)
    results = [
        error_rate_guardrail(
            err_ctrl,
            err_cand,
            policy.error_rate_margin,
            alpha_for(policy, "error_rate"),
            policy.min_rollback_pairs,
        ),
        latency_p95_guardrail(
            lat[Arm.CONTROL],
            lat[Arm.CANDIDATE],
            policy.latency_p95_margin,
            alpha_for(policy, "latency_p95"),
            policy.min_rollback_pairs,
            policy.latency_p95_slack_s,
        ),
    ]
    if tok_ctrl.size >= 2:
        results.append(
            tokens_guardrail(
                tok_ctrl,
                tok_cand,
                policy.tokens_margin,
                alpha_for(policy, "tokens"),
                planned_n(policy),
                policy.min_pairs,
            )
        )
    return results


def live_checks(fb: FeedbackEvidence, policy: Policy, since: float) -> dict[str, SequentialLive]:
    out: dict[str, SequentialLive] = {}
    labels = sorted(set(fb.labels))
    for label in labels:
        idx = [i for i, lab in enumerate(fb.labels) if lab == label and fb.times[i] >= since]
        means = user_means([fb.arms[i] for i in idx], fb.values[idx], [fb.users[i] for i in idx])
        ctrl = list(means.get(Arm.CONTROL.value, {}).values())
        cand = list(means.get(Arm.CANDIDATE.value, {}).values())
        if min(len(ctrl), len(cand)) >= 2:
            out[label] = live_sequential(
                ctrl,
                cand,
                policy.live_margin,
                alpha_for(policy, "live") / len(labels),
                planned_n(policy),
                policy.min_live_users,
            )
    return out


@dataclass(frozen=True)
class Health:
    """The judge-health and staleness figures, from evidence or from the running state."""

    last_time: float | None
    judged: int
    pairwise: int
    inconsistent: int
    bad_scores: int
    dead_letters: int
    bad_entries: int

    @classmethod
    def of(cls, evidence: Evidence) -> Health:
        j = evidence.judge
        return cls(
            evidence.last_time, j.n, j.pairwise, j.inconsistent, j.bad_scores,
            evidence.dead_letters, evidence.bad_entries,
        )  # fmt: skip


def health_json(h: Health, now: float) -> dict[str, object]:
    return {
        "pairwise_verdicts": h.pairwise,
        "inconsistent": h.inconsistent,
        "dead_letters": h.dead_letters,
        "bad_entries": h.bad_entries,
        "bad_scores": h.bad_scores,
        "age_seconds": (now - h.last_time) if h.last_time is not None else None,
    }


def pause_reasons(h: Health, policy: Policy, srm: SrmResult | None, now: float) -> list[str]:
    reasons = []
    last = h.last_time
    if last is not None and now - last > policy.stale_after_seconds:
        reasons.append(
            f"the newest evidence is {now - last:.0f} s old (stale after"
            f" {policy.stale_after_seconds:.0f} s)."
        )
    if h.pairwise >= MIN_HEALTH_SAMPLE:
        share = h.inconsistent / h.pairwise
        if share > policy.max_judge_inconsistency:
            reasons.append(
                f"the judge disagrees with itself when the order is swapped on {share:.0%} of"
                f" pairs (limit {policy.max_judge_inconsistency:.0%})."
            )
    total = h.dead_letters + h.judged
    if total >= MIN_HEALTH_SAMPLE and h.dead_letters / total > policy.max_dead_letter_share:
        reasons.append(
            f"{h.dead_letters} of {total} pairs went to the dead-letter stream"
            f" (limit {policy.max_dead_letter_share:.0%})."
        )
    if srm is not None and srm.mismatch:
        reasons.append(
            f"sample-ratio mismatch: the candidate served {srm.observed_candidate_share:.1%}"
            f" of requests against {srm.expected_candidate_share:.1%} configured"
            f" (always-valid p = {srm.p_value:.2g} at alpha {srm.alpha:.2g}); no verdict is"
            " trusted until it is fixed."
        )
    return reasons


def rollback_reasons(c: Checks) -> list[str]:
    reasons = []
    g = c.gate
    if g.inferior:
        reasons.append(
            f"the judge's win rate {g.win_rate:.3f} over {g.n} pairs is below"
            f" {0.5 - c.policy.loss_margin:.3f} (0.5 - loss margin; always-valid p ="
            f" {g.loss_p_value:.3g} at alpha {g.alpha_loss:.3g})."
        )
    for gr in c.guardrails:
        if gr.breached:
            shown = f"p = {gr.p_breach:.3g}" if gr.p_breach is not None else f"{gr.interval}"
            reasons.append(
                f"guardrail {gr.name} is breached: candidate {gr.candidate:.4g} against control"
                f" {gr.control:.4g}, margin {gr.margin:g} (always-valid {shown} at alpha"
                f" {gr.alpha:.3g})."
            )
    for cat in c.categories:
        if cat.significant:
            reasons.append(
                f"category '{cat.category}' regresses significantly: net {cat.net:+.1%} over"
                f" {cat.n} pairs beyond the {cat.tolerance:.0%} tolerance"
                f" (always-valid Holm p = {cat.p_regression:.3g} at alpha {cat.alpha:.3g})."
            )
    return reasons
