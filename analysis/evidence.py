"""Evidence for one experiment: the pairs, verdicts, feedback and labels streams as arrays.

This module and analysis/controller.py are the only ones that touch Redis. The judge evidence
holds one score per pair: the ``pairwise`` scorer's verdict when the pair has one, else the
programmatic scorer's (the first by name), so a task category scored by ``json_fields`` and a
probe category scored by a normalized match both count.

A verdict whose score (or per-arm score) is NaN, infinite or outside [0, 1] is refused here, at
the verdict boundary: it is counted in ``JudgeEvidence.bad_scores`` (shown in the decision's
health evidence) and never becomes a win, a loss or a tie. :func:`build_evidence` is the one
builder from decoded records (human labels from the console ride along for the judge-corrected
estimate, analysis/ppi.py): the controller calls it after reading Redis, and the Monte Carlo
of bench/analysis calls it on generated records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import numpy as np
import redis.asyncio as aioredis

from tunegate import keys
from tunegate.errors import RecordError
from tunegate.outcomes import ArmOutcome
from tunegate.records import (
    PAIR_SCHEMA_VERSION,
    Arm,
    ArmResult,
    Feedback,
    HumanLabel,
    Pair,
    Verdict,
    Winner,
    decode,
)
from tunegate.redis import store_errors
from tunegate.responses import parse_response

__all__ = [
    "PAIRWISE",
    "UNCATEGORIZED",
    "WINNER_SCORE",
    "Evidence",
    "FeedbackEvidence",
    "JudgeEvidence",
    "LabelEvidence",
    "PairEvidence",
    "VerdictLike",
    "arm_outcome",
    "arm_score",
    "arm_tokens",
    "arm_values",
    "build_evidence",
    "load_evidence",
    "outranks",
    "preferred",
    "read_labels",
    "refused",
    "verdict_score",
]

PAIRWISE = "pairwise"
UNCATEGORIZED = "uncategorized"
WINNER_SCORE = {Winner.CANDIDATE: 1.0, Winner.CONTROL: 0.0, Winner.TIE: 0.5}  # a winner's score
_BATCH = 5000


def _floats(values: Iterable[float]) -> np.ndarray:
    return np.fromiter(values, dtype=np.float64)


@dataclass(frozen=True)
class JudgeEvidence:
    """One primary score per judged pair, in time order."""

    scores: np.ndarray = field(default_factory=lambda: _floats([]))
    times: np.ndarray = field(default_factory=lambda: _floats([]))
    categories: list[str] = field(default_factory=list)
    scorers: list[str] = field(default_factory=list)
    candidate_correct: np.ndarray = field(default_factory=lambda: _floats([]))  # nan: unknown
    control_correct: np.ndarray = field(default_factory=lambda: _floats([]))
    pairwise: int = 0  # pairwise verdicts seen
    inconsistent: int = 0  # of those, the ones whose two orders disagreed
    bad_scores: int = 0  # verdicts refused: score NaN, infinite or outside [0, 1]
    pair_ids: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.scores.size)

    def head(self, n: int) -> JudgeEvidence:
        """The first ``n`` judged pairs (health counts are kept whole)."""
        return JudgeEvidence(
            self.scores[:n],
            self.times[:n],
            self.categories[:n],
            self.scorers[:n],
            self.candidate_correct[:n],
            self.control_correct[:n],
            self.pairwise,
            self.inconsistent,
            self.bad_scores,
            self.pair_ids[:n],
        )


@dataclass(frozen=True)
class LabelEvidence:
    """Human labels, in time order: the pair, its score (1 candidate, 0.5 tie, 0 control)."""

    times: np.ndarray = field(default_factory=lambda: _floats([]))
    pair_ids: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: _floats([]))

    def head(self, n: int) -> LabelEvidence:
        return LabelEvidence(self.times[:n], self.pair_ids[:n], self.scores[:n])

    def latest(self) -> dict[str, float]:
        """Pair id -> human score; a pair labelled twice keeps its newest label."""
        return dict(zip(self.pair_ids, self.scores.tolist(), strict=True))


@dataclass(frozen=True)
class PairEvidence:
    """Per logged pair: time, served arm (1 = candidate) and each arm's outcome (nan: none)."""

    times: np.ndarray = field(default_factory=lambda: _floats([]))
    served_candidate: np.ndarray = field(default_factory=lambda: _floats([]))
    errors: dict[Arm, np.ndarray] = field(default_factory=dict)
    latency: dict[Arm, np.ndarray] = field(default_factory=dict)
    tokens: dict[Arm, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.times.size)

    def head(self, n: int) -> PairEvidence:
        def cut(d: dict[Arm, np.ndarray]) -> dict[Arm, np.ndarray]:
            return {arm: v[:n] for arm, v in d.items()}

        return PairEvidence(
            self.times[:n],
            self.served_candidate[:n],
            cut(self.errors),
            cut(self.latency),
            cut(self.tokens),
        )


@dataclass(frozen=True)
class FeedbackEvidence:
    times: np.ndarray = field(default_factory=lambda: _floats([]))
    arms: list[str] = field(default_factory=list)
    values: np.ndarray = field(default_factory=lambda: _floats([]))
    users: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    experiment: str
    judge: JudgeEvidence = field(default_factory=JudgeEvidence)
    pairs: PairEvidence = field(default_factory=PairEvidence)
    feedback: FeedbackEvidence = field(default_factory=FeedbackEvidence)
    dead_letters: int = 0
    bad_entries: int = 0  # stream entries that did not decode
    labels: LabelEvidence = field(default_factory=LabelEvidence)

    @property
    def last_time(self) -> float | None:
        """Newest verdict time, else newest pair time, else None."""
        for times in (self.judge.times, self.pairs.times):
            if times.size:
                return float(times.max())
        return None

    def until(self, time: float) -> Evidence:
        """The evidence as it stood at ``time``: what a look at that moment would have read.

        Equal to building from the records up to ``time`` (tests/analysis checks it), so the
        Monte Carlo builds each stream once and looks at its prefixes.
        """
        fb = self.feedback
        k = int(np.searchsorted(fb.times, time, side="right"))
        return Evidence(
            self.experiment,
            self.judge.head(int(np.searchsorted(self.judge.times, time, side="right"))),
            self.pairs.head(int(np.searchsorted(self.pairs.times, time, side="right"))),
            FeedbackEvidence(fb.times[:k], fb.arms[:k], fb.values[:k], fb.users[:k], fb.labels[:k]),
            self.dead_letters,
            self.bad_entries,
            self.labels.head(int(np.searchsorted(self.labels.times, time, side="right"))),
        )


class VerdictLike(Protocol):
    """What evidence reads of a verdict: a Verdict, or its outcome field (tunegate/outcomes.py)."""

    @property
    def pair_id(self) -> str: ...
    @property
    def scorer(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def score(self) -> float | None: ...
    @property
    def winner(self) -> Winner | None: ...
    @property
    def arm_scores(self) -> dict[Arm, float] | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def inconsistent(self) -> bool: ...


def _in_unit(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


def refused(verdict: VerdictLike) -> bool:
    """A score or per-arm score that is NaN, infinite or outside [0, 1]."""
    if verdict.score is not None and not _in_unit(verdict.score):
        return True
    return bool(verdict.arm_scores) and not all(
        _in_unit(v) for v in (verdict.arm_scores or {}).values()
    )


def verdict_score(verdict: VerdictLike) -> float | None:
    if verdict.score is not None:
        return verdict.score
    return WINNER_SCORE[verdict.winner] if verdict.winner is not None else None


def _judge(verdicts: Iterable[Verdict], pair_categories: dict[str, str | None]) -> JudgeEvidence:
    chosen: dict[str, Verdict] = {}
    pairwise = inconsistent = bad = 0
    for verdict in verdicts:
        if refused(verdict):
            bad += 1
            continue
        if verdict_score(verdict) is None:
            continue
        if verdict.scorer == PAIRWISE:
            pairwise += 1
            inconsistent += verdict.inconsistent
        best = chosen.get(verdict.pair_id)
        if best is None or preferred(verdict, best):
            chosen[verdict.pair_id] = verdict
    rows = sorted(chosen.values(), key=lambda v: v.time)
    correct = arm_score

    return JudgeEvidence(
        scores=_floats(verdict_score(v) or 0.0 for v in rows),
        times=_floats(v.time for v in rows),
        categories=[v.category or pair_categories.get(v.pair_id) or UNCATEGORIZED for v in rows],
        scorers=[v.scorer for v in rows],
        candidate_correct=_floats(correct(v, Arm.CANDIDATE) for v in rows),
        control_correct=_floats(correct(v, Arm.CONTROL) for v in rows),
        pairwise=pairwise,
        inconsistent=inconsistent,
        bad_scores=bad,
        pair_ids=[v.pair_id for v in rows],
    )


def arm_score(verdict: VerdictLike, arm: Arm) -> float:
    """The per-arm score of a programmatic verdict (nan: unknown)."""
    return verdict.arm_scores.get(arm, math.nan) if verdict.arm_scores else math.nan


def preferred(new: Verdict, old: Verdict) -> bool:
    """Pairwise beats programmatic; among programmatic the first scorer name; then the newest."""
    return outranks(new.scorer, new.time, old.scorer, old.time)


def outranks(new_scorer: str, new_time: float, old_scorer: str, old_time: float) -> bool:
    """:func:`preferred` on the two fields it reads (the incremental store keeps only those)."""
    rank_new = (new_scorer != PAIRWISE, new_scorer)
    rank_old = (old_scorer != PAIRWISE, old_scorer)
    return rank_new < rank_old or (rank_new == rank_old and new_time >= old_time)


def arm_values(outcome: ArmOutcome | None) -> tuple[float, float, float]:
    """(error 0/1, latency, completion tokens) of one arm; nan where it has none.

    Latency and tokens count only for a good answer; tokens are the total when the usage block
    has no completion count.
    """
    if outcome is None:
        return math.nan, math.nan, math.nan
    if not outcome.ok:
        return 1.0, math.nan, math.nan
    latency = outcome.latency_s if outcome.latency_s is not None else math.nan
    count = outcome.completion_tokens
    count = count if count is not None else outcome.total_tokens
    return 0.0, latency, float(count) if count is not None else math.nan


def arm_tokens(result: ArmResult | None, pair_version: int) -> float:
    """An arm's completion tokens: from the record (schema 2), else parsed from its body.

    A version-2 pair carries the counts (set by the proxy); only a version-1 pair's body is
    parsed, so the decision path reads no response body for the pairs the proxy writes now.
    """
    if result is None or not result.ok:
        return math.nan
    if pair_version >= PAIR_SCHEMA_VERSION:
        return arm_values(ArmOutcome.of(result))[2]
    try:
        usage = parse_response(result).usage
    except RecordError:
        return math.nan
    found = usage.get("completion_tokens", usage.get("total_tokens"))
    return float(found) if found is not None else math.nan


def arm_outcome(result: ArmResult | None) -> tuple[float, float]:
    """(error 0/1, latency) of one arm; nan where the arm has none (no copy, or no good answer)."""
    error, latency, _ = arm_values(ArmOutcome.of(result) if result is not None else None)
    return error, latency


def _pairs(pairs: list[Pair]) -> PairEvidence:
    pairs = sorted(pairs, key=lambda p: p.time)
    errors, latency, tokens = {}, {}, {}
    for arm in Arm:
        outcomes = [arm_outcome(p.arm(arm)) for p in pairs]
        errors[arm] = _floats(o[0] for o in outcomes)
        latency[arm] = _floats(o[1] for o in outcomes)
        tokens[arm] = _floats(arm_tokens(p.arm(arm), p.schema_version) for p in pairs)
    return PairEvidence(
        times=_floats(p.time for p in pairs),
        served_candidate=_floats(float(p.served_arm is Arm.CANDIDATE) for p in pairs),
        errors=errors,
        latency=latency,
        tokens=tokens,
    )


def _feedback(items: list[Feedback]) -> FeedbackEvidence:
    items = sorted(items, key=lambda f: f.time)
    return FeedbackEvidence(
        times=_floats(f.time for f in items),
        arms=[f.arm.value for f in items],
        values=_floats(f.value for f in items),
        users=[f.user_key_hash or f.pair_id for f in items],
        labels=[f.label or "feedback" for f in items],
    )


def _labels(items: list[HumanLabel]) -> LabelEvidence:
    items = sorted(items, key=lambda label: label.time)
    return LabelEvidence(
        times=_floats(label.time for label in items),
        pair_ids=[label.pair_id for label in items],
        scores=_floats(WINNER_SCORE[label.winner] for label in items),
    )


def build_evidence(
    experiment: str,
    pairs: list[Pair],
    verdicts: list[Verdict],
    feedback: list[Feedback],
    dead_letters: int = 0,
    bad_entries: int = 0,
    labels: list[HumanLabel] | None = None,
) -> Evidence:
    """Evidence from decoded records (pure; what :func:`load_evidence` calls after reading)."""
    categories = {p.id: p.category for p in pairs}
    return Evidence(
        experiment=experiment,
        judge=_judge(verdicts, categories),
        pairs=_pairs(pairs),
        feedback=_feedback(feedback),
        dead_letters=dead_letters,
        bad_entries=bad_entries,
        labels=_labels(labels or []),
    )


_Entries = list[tuple[bytes, dict[bytes, bytes]]]
T = TypeVar("T", Pair, Verdict, Feedback, HumanLabel)


async def _read(client: aioredis.Redis, stream: str, model: type[T], bad: list[int]) -> list[T]:
    out: list[T] = []
    start = "-"
    while True:
        # redis-py types stream replies loosely; with bytes responses this is their shape
        entries = cast(_Entries, await client.xrange(stream, min=start, count=_BATCH))
        for _, fields in entries:
            try:
                out.append(decode(fields, model))
            except RecordError:
                bad[0] += 1
        if len(entries) < _BATCH:
            return out
        start = "(" + entries[-1][0].decode()


async def read_labels(client: aioredis.Redis, experiment: str) -> tuple[LabelEvidence, int]:
    """The experiment's human labels (a small stream: people label hundreds, not millions) and
    how many entries could not be decoded."""
    bad = [0]
    with store_errors("read labels"):
        labels = await _read(client, keys.labels(experiment), HumanLabel, bad)
    return _labels(labels), bad[0]


async def load_evidence(client: aioredis.Redis, experiment: str) -> Evidence:
    """Read the experiment's streams from Redis; undecodable entries are counted, not fatal."""
    bad = [0]
    with store_errors("read evidence"):
        pairs = await _read(client, keys.pairs(experiment), Pair, bad)
        verdicts = await _read(client, keys.verdicts(experiment), Verdict, bad)
        feedback = await _read(client, keys.feedback(experiment), Feedback, bad)
        labels = await _read(client, keys.labels(experiment), HumanLabel, bad)
        dead = int(await client.xlen(keys.dead(experiment)))
    return build_evidence(experiment, pairs, verdicts, feedback, dead, bad[0], labels)
