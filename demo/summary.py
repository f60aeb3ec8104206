"""Per-category figures of a demo run, read back from the verdicts the judge wrote to Redis.

For each category and scorer: how many pairs were judged and the candidate's wins, losses and
ties (the verdicts the decision uses), and each arm's mean score under the judge's programmatic
scorer (field accuracy of the triage JSON, whole-word match of a probe's key answer,
reciprocal rank of the right article), scored again here over every pair so that identical
answers count too (the judge shortcuts those to a tie without scoring them). These are the
figures the demo prints.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from judge.routing import resolve_scorers
from judge.scorers import AUTO, build_registry
from judge.scorers.base import ScoreContext
from tunegate import keys
from tunegate.errors import RecordError
from tunegate.records import Arm, Pair, Verdict, Winner, decode_pair, decode_verdict
from tunegate.redis import store_errors

__all__ = ["CategoryFigures", "arm_scores", "category_figures", "read_pairs", "read_verdicts"]


@dataclass(frozen=True, slots=True)
class CategoryFigures:
    """One category's judged pairs for one scorer."""

    category: str
    scorer: str
    pairs: int
    wins: int
    losses: int
    ties: int
    control_score: float | None
    candidate_score: float | None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


async def read_verdicts(client: aioredis.Redis, experiment: str) -> list[Verdict]:
    """Every verdict of ``experiment`` (the demo's streams are small); bad entries are skipped."""
    with store_errors("read verdicts"):
        entries = await client.xrange(keys.verdicts(experiment))
    verdicts = []
    for _, fields in entries or []:
        with contextlib.suppress(RecordError):
            verdicts.append(decode_verdict(fields or {}))
    return verdicts


async def read_pairs(client: aioredis.Redis, experiment: str) -> list[Pair]:
    """Every pair of ``experiment``; bad entries are skipped."""
    with store_errors("read pairs"):
        entries = await client.xrange(keys.pairs(experiment))
    pairs = []
    for _, fields in entries or []:
        with contextlib.suppress(RecordError):
            pairs.append(decode_pair(fields or {}))
    return pairs


async def arm_scores(
    pairs: list[Pair], by_category: dict[str, list[str]] | None = None
) -> dict[tuple[str, str], list[dict[Arm, float]]]:
    """Both arms' scores per (category, scorer) under the programmatic scorers ``auto`` picks
    (with the experiment's ``category_scorers``).

    An arm that failed or answered something unscorable scores 0.
    """
    registry = build_registry()
    scores: dict[tuple[str, str], list[dict[Arm, float]]] = {}
    for pair in pairs:
        ctx = ScoreContext.of(pair)
        for scorer in resolve_scorers([AUTO], ctx, registry, by_category):
            row = {}
            for arm in (Arm.CONTROL, Arm.CANDIDATE):
                alone = ScoreContext(pair, ctx.parsed(arm), ctx.parsed(arm))
                try:
                    scored = await scorer.score(alone)
                except RecordError:
                    row[arm] = 0.0
                    continue
                row[arm] = (scored.arm_scores or {}).get(Arm.CANDIDATE, 0.0)
            scores.setdefault((pair.category or "-", scorer.name), []).append(row)
    return scores


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def category_figures(
    verdicts: list[Verdict], scores: dict[tuple[str, str], list[dict[Arm, float]]]
) -> list[CategoryFigures]:
    """Figures per (category, scorer), sorted by category then scorer."""
    groups: dict[tuple[str, str], list[Verdict]] = {}
    for verdict in verdicts:
        groups.setdefault((verdict.category or "-", verdict.scorer), []).append(verdict)
    figures = []
    for (category, scorer), items in sorted(groups.items()):
        scored = scores.get((category, scorer), [])
        figures.append(
            CategoryFigures(
                category=category,
                scorer=scorer,
                pairs=len(items),
                wins=sum(v.winner is Winner.CANDIDATE for v in items),
                losses=sum(v.winner is Winner.CONTROL for v in items),
                ties=sum(v.winner is Winner.TIE for v in items),
                control_score=_mean([s[Arm.CONTROL] for s in scored if Arm.CONTROL in s]),
                candidate_score=_mean([s[Arm.CANDIDATE] for s in scored if Arm.CANDIDATE in s]),
            )
        )
    return figures
