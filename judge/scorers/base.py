"""What every scorer shares: the pair's parsed content, the Scorer protocol, arm comparison.

Every scorer sees capped input (``ScoreContext.of(pair, max_chars=…)``: each answer and the
reference cut at ``max_chars``, at most ``MAX_VECTORS`` embeddings per arm), and the
programmatic ones run in a worker thread, so no pair can stall the event loop of a worker.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from judge.pairwise import Comparison
from tunegate.errors import RecordError
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Winner
from tunegate.responses import ParsedResponse, parse_response

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MAX_VECTORS",
    "ArmScorer",
    "ScoreContext",
    "Scored",
    "Scorer",
    "compare_arms",
]

#: what a scorer sees of each answer and of the reference when the caller names no cap
DEFAULT_MAX_CHARS = 200_000
#: embeddings per arm a scorer sees (a retrieval pair's query and documents)
MAX_VECTORS = 10_000


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


def _cap(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


@dataclass(slots=True)
class ScoreContext:
    """One pair with both arms parsed once; an arm that failed or did not parse is ``None``.

    ``text`` and ``reference`` are what scorers see: cut at ``max_chars``; ``truncated`` says
    whether anything was cut, and the verdict records it.
    """

    pair: Pair
    candidate: ParsedResponse | None
    control: ParsedResponse | None
    max_chars: int = DEFAULT_MAX_CHARS
    truncated: bool = field(init=False, default=False)
    _texts: dict[Arm, str] = field(init=False, default_factory=dict)
    _reference: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        for arm in (Arm.CANDIDATE, Arm.CONTROL):
            parsed = self.parsed(arm)
            self._texts[arm], cut = _cap(_text(parsed), self.max_chars)
            self.truncated |= cut
            if parsed is not None and len(parsed.embeddings) > MAX_VECTORS:
                parsed.embeddings = parsed.embeddings[:MAX_VECTORS]
                self.truncated = True
        if self.pair.reference is not None:
            self._reference, cut = _cap(self.pair.reference, self.max_chars)
            self.truncated |= cut

    @classmethod
    def of(cls, pair: Pair, *, max_chars: int = DEFAULT_MAX_CHARS) -> ScoreContext:
        return cls(pair, _parsed(pair.candidate), _parsed(pair.control), max_chars)

    def parsed(self, arm: Arm) -> ParsedResponse | None:
        return self.candidate if arm is Arm.CANDIDATE else self.control

    def text(self, arm: Arm) -> str:
        return self._texts.get(arm, "")

    @property
    def reference(self) -> str | None:
        return self._reference

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
    """A programmatic scorer that scores each arm's text against the pair's reference.

    ``score_text`` is plain CPU work on capped input; ``score`` runs it in a worker thread.
    """

    name = "arm"
    version = 1

    def applies(self, ctx: ScoreContext) -> bool:
        return ctx.pair.reference is not None and ctx.pair.endpoint is not Endpoint.EMBEDDINGS

    def judge_version(self, ctx: ScoreContext) -> str:
        return f"{self.name}/{self.version}"

    @abstractmethod
    def score_text(self, text: str, reference: str) -> float:
        """This arm's score in [0, 1]."""

    def score_arms(self, candidate: str, control: str, reference: str) -> Scored:
        return compare_arms(
            self.score_text(candidate, reference), self.score_text(control, reference)
        )

    async def score(self, ctx: ScoreContext) -> Scored:
        return await asyncio.to_thread(
            self.score_arms, ctx.text(Arm.CANDIDATE), ctx.text(Arm.CONTROL), ctx.reference or ""
        )
