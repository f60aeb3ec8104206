"""Simulated experiments for the decision Monte Carlo: arrays per stream, and their records.

A batch holds many streams at once (runs x pairs): each pair's category, the judge's score
(win 1, tie 0.5, loss 0) and both arms' error, latency and tokens. :func:`records` turns one
stream's first pairs into the Pair and Verdict records the proxy and judge would have written,
so the Monte Carlo can feed the production builder (analysis.evidence.build_evidence) and the
production ``decide()``. Records are made with ``model_construct``: the values are valid by
construction, and validation is the decoder's job (tested in tests/records).

Making records and building Evidence from them costs about a millisecond a pair, far more than
``decide()`` itself, so :func:`evidence_at` writes the same Evidence straight from the arrays
(microseconds). :func:`same_evidence` compares the two field by field; the Monte Carlo checks
it on its audited streams at every look, and a mismatch fails the bench (and the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.evidence import (
    PAIRWISE,
    Evidence,
    FeedbackEvidence,
    JudgeEvidence,
    PairEvidence,
    build_evidence,
)
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Verdict

__all__ = [
    "START",
    "Batch",
    "Scenario",
    "evidence_at",
    "generate",
    "record_evidence",
    "records",
    "same_evidence",
]

START = 1_800_000_000.0  # time of the first pair; pairs are one second apart
ERROR_RATE = 0.01  # both arms, every scenario: the guardrails see A/A error rates


@dataclass(frozen=True)
class Scenario:
    """Per-category win and loss probabilities and traffic shares."""

    name: str
    shares: tuple[float, ...]
    wins: tuple[float, ...]
    losses: tuple[float, ...]

    @staticmethod
    def uniform(name: str, categories: int, win_rate: float, tie_rate: float) -> Scenario:
        """Every category alike, win rate (ties half) ``win_rate``; sizes k, k-1, ..., 1."""
        sizes = np.arange(categories, 0, -1, dtype=float)
        decisive = (1 - tie_rate) / 2
        effect = win_rate - 0.5
        if decisive - effect < 0:
            raise ValueError("win rate too high for the tie rate")
        return Scenario(
            name,
            tuple(sizes / sizes.sum()),
            (decisive + effect,) * categories,
            (decisive - effect,) * categories,
        )

    @staticmethod
    def one_regresses(categories: int) -> Scenario:
        """Wins overall; one category with 1/5 of the traffic has 25 % wins, 55 % losses."""
        rest = (0.8 / (categories - 1),) * (categories - 1)
        return Scenario(
            f"regress_{categories}",
            (0.2, *rest),
            (0.25,) + (0.6,) * (categories - 1),
            (0.55,) + (0.2,) * (categories - 1),
        )


@dataclass(frozen=True)
class Batch:
    category: np.ndarray  # int, runs x pairs
    scores: np.ndarray
    errors: dict[Arm, np.ndarray]  # 0/1
    latency: dict[Arm, np.ndarray]  # seconds (meaningless where the arm errored)
    tokens: dict[Arm, np.ndarray]
    served_u: np.ndarray  # uniform draws: served by the candidate when below the weight

    @property
    def runs(self) -> int:
        return int(self.scores.shape[0])


def generate(rng: np.random.Generator, scenario: Scenario, runs: int, pairs: int) -> Batch:
    k = len(scenario.shares)
    category = rng.choice(k, size=(runs, pairs), p=np.asarray(scenario.shares))
    win = np.asarray(scenario.wins)[category]
    loss = np.asarray(scenario.losses)[category]
    u = rng.random((runs, pairs))
    scores = np.where(u < win, 1.0, np.where(u < win + loss, 0.0, 0.5))
    errors = {arm: (rng.random((runs, pairs)) < ERROR_RATE).astype(float) for arm in Arm}
    latency = {arm: rng.gamma(4.0, 0.05, (runs, pairs)) for arm in Arm}
    tokens = {arm: rng.poisson(80, (runs, pairs)).astype(float) for arm in Arm}
    return Batch(category, scores, errors, latency, tokens, rng.random((runs, pairs)))


def _arm(batch: Batch, run: int, i: int, arm: Arm) -> ArmResult:
    name = "base" if arm is Arm.CONTROL else "tuned"
    if batch.errors[arm][run, i]:
        return ArmResult.model_construct(
            upstream=name, model=name, status=500, error="status", latency_s=0.05
        )
    tokens = int(batch.tokens[arm][run, i])
    return ArmResult.model_construct(
        upstream=name,
        model=name,
        status=200,
        body=f'{{"usage":{{"completion_tokens":{tokens}}}}}',
        completion_tokens=tokens,  # schema-2 pairs carry the counts (the proxy sets them)
        latency_s=float(batch.latency[arm][run, i]),
    )


def records(
    batch: Batch, run: int, start: int, stop: int, weights: np.ndarray
) -> tuple[list[Pair], list[Verdict]]:
    """Records of pairs ``start``..``stop`` of one stream; ``weights[i]`` is the A/B weight then."""
    pairs, verdicts = [], []
    for i in range(start, stop):
        pid = f"p{i}"
        t = START + i
        category = f"c{int(batch.category[run, i])}"
        served = Arm.CANDIDATE if batch.served_u[run, i] < weights[i] else Arm.CONTROL
        pairs.append(
            Pair.model_construct(
                id=pid,
                experiment="exp",
                time=t,
                endpoint=Endpoint.CHAT,
                request="{}",
                served_arm=served,
                control=_arm(batch, run, i, Arm.CONTROL),
                candidate=_arm(batch, run, i, Arm.CANDIDATE),
                category=category,
                labels={},  # given, so model_construct never inspects a default factory
            )
        )
        verdicts.append(
            Verdict.model_construct(
                pair_id=pid,
                experiment="exp",
                scorer="pairwise",
                judge_version="mc",
                time=t + 0.5,
                score=float(batch.scores[run, i]),
                category=category,
                orders=[],
            )
        )
    return pairs, verdicts


def evidence_at(batch: Batch, run: int, t: int, weights: np.ndarray) -> Evidence:
    """The Evidence a look after pair ``t`` reads, from the arrays (= :func:`record_evidence`)."""
    nan = np.full(t, np.nan)
    errors = {arm: batch.errors[arm][run, :t].copy() for arm in Arm}
    ok = {arm: errors[arm] == 0 for arm in Arm}
    names = [f"c{int(c)}" for c in batch.category[run, :t]]
    judge = JudgeEvidence(
        scores=batch.scores[run, :t].copy(),
        times=START + np.arange(t) + 0.5,
        categories=names,
        scorers=[PAIRWISE] * t,
        candidate_correct=nan,
        control_correct=nan.copy(),
        pairwise=t,
        pair_ids=[f"p{i}" for i in range(t)],  # the ids records() gives the pairs
    )
    pairs = PairEvidence(
        times=START + np.arange(t, dtype=np.float64),
        served_candidate=(batch.served_u[run, :t] < weights[:t]).astype(np.float64),
        errors=errors,
        latency={arm: np.where(ok[arm], batch.latency[arm][run, :t], np.nan) for arm in Arm},
        tokens={arm: np.where(ok[arm], batch.tokens[arm][run, :t], np.nan) for arm in Arm},
    )
    return Evidence("exp", judge, pairs, FeedbackEvidence())


def record_evidence(batch: Batch, run: int, t: int, weights: np.ndarray) -> Evidence:
    """The production path: the stream's first ``t`` pairs as records, through build_evidence."""
    pairs, verdicts = records(batch, run, 0, t, weights)
    return build_evidence("exp", pairs, verdicts, [])


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def same_evidence(a: Evidence, b: Evidence) -> bool:
    """Field-by-field equality of two Evidence values (arrays exactly, NaN equal to NaN)."""
    parts = ((a.judge, b.judge), (a.pairs, b.pairs), (a.feedback, b.feedback))
    return (a.experiment, a.dead_letters, a.bad_entries) == (
        b.experiment,
        b.dead_letters,
        b.bad_entries,
    ) and all(_same(getattr(x, f), getattr(y, f)) for x, y in parts for f in x.__dataclass_fields__)
