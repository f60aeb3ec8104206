"""Build the Verdict for one pair and scorer, with the LLM judge's provenance when it has one."""

from __future__ import annotations

from judge.scorers.base import ScoreContext, Scored
from tunegate.records import Verdict

__all__ = ["build_verdict"]


def build_verdict(
    ctx: ScoreContext, scorer: str, version: str, scored: Scored, *, rationale_max_chars: int
) -> Verdict:
    """The verdict; category, served arm and user key hash are copied from the pair."""
    pair = ctx.pair
    verdict = Verdict(
        pair_id=pair.id,
        experiment=pair.experiment,
        scorer=scorer,
        judge_version=version,
        winner=scored.winner,
        score=scored.score,
        arm_scores=scored.arm_scores,
        category=pair.category,
        reason=scored.reason,
        served_arm=pair.served_arm,
        user_key_hash=pair.user_key_hash,
        input_truncated=ctx.truncated,
    )
    result = scored.comparison
    if result is not None:
        verdict.orders = result.orders
        verdict.inconsistent = result.inconsistent
        verdict.judge_model = result.judge_model
        verdict.template_hash = result.template.hash if result.template else None
        verdict.tokens_in, verdict.tokens_out = result.tokens_in, result.tokens_out
        verdict.cost_usd = result.cost_usd
        verdict.rationale = result.rationale[:rationale_max_chars]
        verdict.rationale_truncated = len(result.rationale) > rationale_max_chars
        verdict.input_truncated = ctx.truncated or result.input_truncated
        verdict.latency_s = result.latency_s
    return verdict
