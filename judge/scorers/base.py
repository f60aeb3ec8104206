"""What every scorer shares: the pair's parsed content, the Scorer protocol, arm comparison."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import orjson

from judge.pairwise import Comparison
from tunegate.errors import RecordError
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Winner
from tunegate.responses import ParsedResponse, parse_response

__all__ = ["ArmScorer", "ScoreContext", "Scored", "Scorer", "compare_arms"]


@dataclass(slots=True)
class Scored:
    """A scorer's result before the worker stamps the pair's provenance on it."""

    winner: Winner
    score: float  # candidate's score in [0, 1]
    reason: str
    arm_scores: dict[Arm, float] | None = None
    comparison: Comparison | None = None  # the LLM judge's provenance


def _parsed(result: ArmResult | None) -> ParsedResponse | None:
    if result is None or not result.ok:
        return None
    try:
        return parse_response(result)
    except RecordError:
        return None


def _text(parsed: ParsedResponse | None) -> str:
    if parsed is None:
        return ""
    calls = parsed.tool_calls[0] if parsed.tool_calls else []
    if calls:
        return parsed.text + ("\n" if parsed.text else "") + orjson.dumps(calls).decode()
    return parsed.text


@dataclass(slots=True)
class ScoreContext:
    """One pair with both arms parsed once; an arm that failed or did not parse is ``None``."""

    pair: Pair
    candidate: ParsedResponse | None
    control: ParsedResponse | None

    @classmethod
    def of(cls, pair: Pair) -> ScoreContext:
        return cls(pair, _parsed(pair.candidate), _parsed(pair.control))

    def parsed(self, arm: Arm) -> ParsedResponse | None:
        return self.candidate if arm is Arm.CANDIDATE else self.control

    def text(self, arm: Arm) -> str:
        return _text(self.parsed(arm))

    @property
    def is_retrieval(self) -> bool:
        return (
            self.pair.endpoint is Endpoint.EMBEDDINGS
            and self.pair.labels.get("task") == "retrieval"
            and self.pair.reference is not None
        )


def compare_arms(candidate: float, control: float, reason: str = "scored") -> Scored:
    """Candidate better → 1, worse → 0, equal → 0.5, with both arms' scores kept."""
    if candidate > control:
        winner, score = Winner.CANDIDATE, 1.0
    elif candidate < control:
        winner, score = Winner.CONTROL, 0.0
    else:
        winner, score = Winner.TIE, 0.5
    return Scored(winner, score, reason, {Arm.CANDIDATE: candidate, Arm.CONTROL: control})


class Scorer(Protocol):
    """One way of scoring a pair. ``applies`` is cheap; ``score`` may call out (LLM, embedder)."""

    name: str

    def applies(self, ctx: ScoreContext) -> bool: ...

    def judge_version(self, ctx: ScoreContext) -> str: ...

    async def score(self, ctx: ScoreContext) -> Scored: ...


class ArmScorer(ABC):
    """A programmatic scorer that scores each arm's text against the pair's reference."""

    name = "arm"
    version = 1

    def applies(self, ctx: ScoreContext) -> bool:
        return ctx.pair.reference is not None and ctx.pair.endpoint is not Endpoint.EMBEDDINGS

    def judge_version(self, ctx: ScoreContext) -> str:
        return f"{self.name}/{self.version}"

    @abstractmethod
    def score_text(self, text: str, reference: str) -> float:
        """This arm's score in [0, 1]."""

    async def score(self, ctx: ScoreContext) -> Scored:
        reference = ctx.pair.reference or ""
        return compare_arms(
            self.score_text(ctx.text(Arm.CANDIDATE), reference),
            self.score_text(ctx.text(Arm.CONTROL), reference),
        )
