"""The pairwise LLM judge as a scorer: both orders, reference-guided when the pair has one."""

from __future__ import annotations

from judge.pairwise import Comparison, PairwiseJudge
from judge.prompts import JudgeInput, input_from_request
from judge.scorers.base import ScoreContext, Scored
from tunegate.records import Arm, Endpoint, Winner

__all__ = ["PairwiseScorer"]


class PairwiseScorer:
    name = "pairwise"

    def __init__(self, judge: PairwiseJudge, *, rubrics: dict[str, str] | None = None) -> None:
        self.judge = judge
        self._rubrics = rubrics or {}

    def applies(self, ctx: ScoreContext) -> bool:
        return ctx.pair.endpoint is not Endpoint.EMBEDDINGS

    def judge_input(self, ctx: ScoreContext) -> JudgeInput:
        return input_from_request(
            ctx.pair.request_json(),
            reference=ctx.reference,
            rubric=self._rubrics.get(ctx.pair.experiment),
        )

    def judge_version(self, ctx: ScoreContext) -> str:
        return self.judge.version_for(self.judge_input(ctx))

    async def compare(self, ctx: ScoreContext) -> Comparison:
        return await self.judge.compare(
            ctx.pair.experiment,
            self.judge_input(ctx),
            ctx.text(Arm.CANDIDATE),
            ctx.text(Arm.CONTROL),
        )

    async def score(self, ctx: ScoreContext) -> Scored:
        result = await self.compare(ctx)
        return Scored(winner_of(result.score), result.score, "judged", comparison=result)


def winner_of(score: float) -> Winner:
    if score > 0.5:
        return Winner.CANDIDATE
    if score < 0.5:
        return Winner.CONTROL
    return Winner.TIE
