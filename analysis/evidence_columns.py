"""Compact evidence rows: what decide() needs of each pair, verdict and feedback, as packed bytes.

The incremental evidence store (analysis/evidence_store.py) keeps one append-only byte string
per kind in Redis; this module is the pure half: record -> row, rows -> :class:`Evidence`. A
row keeps only what :func:`analysis.evidence.build_evidence` reads of a record, through the same
helpers (``arm_outcome``, ``arm_tokens``, ``verdict_score``, ``arm_score``), so both paths give
the same numbers. Bytes per row: pair 35, judged pair 36, feedback 27 (against about 4.5 KB for
a full pair with 1 KB bodies).

- Floats stay float64 where the full read has them (times, latencies, scores), so the arrays
  are equal, not close; token counts are integers and exact in float32 below 2^24.
- Category, scorer and label names are interned in one table of at most :data:`MAX_NAMES`
  entries (they are few; a flood of new names from hostile input maps to :data:`OVERFLOW`).
- A feedback user is kept as the first 8 bytes of its BLAKE2b digest: the live test only
  groups by user, and a collision among 2^32 users has probability below 1e-9.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from analysis.evidence import (
    UNCATEGORIZED,
    Evidence,
    FeedbackEvidence,
    JudgeEvidence,
    PairEvidence,
    VerdictLike,
    arm_outcome,
    arm_score,
    arm_tokens,
    arm_values,
    verdict_score,
)
from tunegate.outcomes import PairOutcome, pair_outcome
from tunegate.records import PAIR_SCHEMA_VERSION, Arm, Feedback, Pair

__all__ = [
    "FEEDBACK_ROW",
    "JUDGE_ROW",
    "MAX_NAMES",
    "OVERFLOW",
    "PAIR_ROW",
    "Counters",
    "Names",
    "PairRow",
    "evidence_from_rows",
    "feedback_row",
    "judge_row",
    "outcome_row",
    "pair_row",
]

PAIR_ROW = np.dtype(
    [
        ("time", "<f8"),
        ("served", "i1"),  # 1: the candidate served
        ("err_control", "i1"),  # 1 error, 0 good, -1 no copy
        ("err_candidate", "i1"),
        ("lat_control", "<f8"),
        ("lat_candidate", "<f8"),
        ("tok_control", "<f4"),
        ("tok_candidate", "<f4"),
    ]
)
JUDGE_ROW = np.dtype(
    [
        ("time", "<f8"),
        ("score", "<f8"),
        ("candidate", "<f8"),  # per-arm correctness, nan: unknown
        ("control", "<f8"),
        ("category", "<u2"),
        ("scorer", "<u2"),
    ]
)
FEEDBACK_ROW = np.dtype(
    [("time", "<f8"), ("value", "<f8"), ("user", "<u8"), ("label", "<u2"), ("arm", "i1")]
)

MAX_NAMES = 1024
OVERFLOW = "(other)"

#: Health counters kept beside the rows (names as in the meta hash).
Counters = dict[str, int]


class Names:
    """The interned category / scorer / label names, in first-seen order."""

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = list(names or [])
        self._index = {name: i for i, name in enumerate(self.names)}
        self.added = False

    def known(self, name: str) -> bool:
        """Whether ``name`` is interned (so :meth:`index` adds nothing)."""
        return name in self._index

    def index(self, name: str) -> int:
        found = self._index.get(name)
        if found is not None:
            return found
        if len(self.names) >= MAX_NAMES - 1 and name != OVERFLOW:
            return self.index(OVERFLOW)
        self._index[name] = len(self.names)
        self.names.append(name)
        self.added = True
        return self._index[name]


def _error_code(value: float) -> int:
    return -1 if math.isnan(value) else int(value)


PairRow = tuple[float, int, int, int, float, float, float, float]


def outcome_row(outcome: PairOutcome) -> PairRow:
    """The row of a pair from its outcome field (what the store reads of a schema-2 pair)."""
    err_c, lat_c, tok_c = arm_values(outcome.control)
    err_k, lat_k, tok_k = arm_values(outcome.candidate)
    served = int(outcome.candidate_served)
    err_c_code, err_k_code = _error_code(err_c), _error_code(err_k)
    return (outcome.time, served, err_c_code, err_k_code, lat_c, lat_k, tok_c, tok_k)


def pair_row(pair: Pair) -> PairRow:
    """The row of one decoded pair, from the same helpers as the full read."""
    if pair.schema_version >= PAIR_SCHEMA_VERSION:
        return outcome_row(pair_outcome(pair))
    err_c, lat_c = arm_outcome(pair.control)
    err_k, lat_k = arm_outcome(pair.candidate)
    return (
        pair.time,
        int(pair.served_arm is Arm.CANDIDATE),
        _error_code(err_c),
        _error_code(err_k),
        lat_c,
        lat_k,
        arm_tokens(pair.control, pair.schema_version),
        arm_tokens(pair.candidate, pair.schema_version),
    )


def judge_row(verdict: VerdictLike, names: Names) -> tuple[float, float, float, float, int, int]:
    """The row of one counted verdict (the caller has refused bad scores and skipped unscored)."""
    return (
        verdict.time,
        verdict_score(verdict) or 0.0,
        arm_score(verdict, Arm.CANDIDATE),
        arm_score(verdict, Arm.CONTROL),
        names.index(verdict.category or UNCATEGORIZED),
        names.index(verdict.scorer),
    )


def _user_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def feedback_row(item: Feedback, names: Names) -> tuple[float, float, int, int, int]:
    return (
        item.time,
        item.value,
        _user_id(item.user_key_hash or item.pair_id),
        names.index(item.label or "feedback"),
        int(item.arm is Arm.CANDIDATE),
    )


def _errors(codes: np.ndarray) -> np.ndarray:
    return np.where(codes < 0, math.nan, codes.astype(np.float64))


def _lookup(names: list[str], codes: np.ndarray) -> list[str]:
    table = np.asarray(names, dtype=object)
    return list(table[codes]) if codes.size else []


def evidence_from_rows(
    experiment: str,
    pairs: bytes,
    judged: bytes,
    feedback: bytes,
    names: list[str],
    counters: Counters,
) -> Evidence:
    """The Evidence the rows describe, in the order they were folded (stream order)."""
    p = np.frombuffer(pairs, dtype=PAIR_ROW)
    j = np.frombuffer(judged, dtype=JUDGE_ROW)
    f = np.frombuffer(feedback, dtype=FEEDBACK_ROW)
    arms = (Arm.CONTROL, Arm.CANDIDATE)
    return Evidence(
        experiment=experiment,
        judge=JudgeEvidence(
            scores=j["score"].copy(),
            times=j["time"].copy(),
            categories=_lookup(names, j["category"]),
            scorers=_lookup(names, j["scorer"]),
            candidate_correct=j["candidate"].copy(),
            control_correct=j["control"].copy(),
            pairwise=counters.get("pairwise", 0),
            inconsistent=counters.get("inconsistent", 0),
            bad_scores=counters.get("bad_scores", 0),
        ),
        pairs=PairEvidence(
            times=p["time"].copy(),
            served_candidate=p["served"].astype(np.float64),
            errors={arm: _errors(p[f"err_{arm.value}"]) for arm in arms},
            latency={arm: p[f"lat_{arm.value}"].copy() for arm in arms},
            tokens={arm: p[f"tok_{arm.value}"].astype(np.float64) for arm in arms},
        ),
        feedback=FeedbackEvidence(
            times=f["time"].copy(),
            arms=[Arm.CANDIDATE.value if a else Arm.CONTROL.value for a in f["arm"]],
            values=f["value"].copy(),
            users=[format(int(u), "016x") for u in f["user"]],
            labels=_lookup(names, f["label"]),
        ),
        dead_letters=counters.get("dead_letters", 0),
        bad_entries=counters.get("bad_entries", 0),
    )
