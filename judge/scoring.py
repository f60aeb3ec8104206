"""PairOutcomes: one pair entry in, one verdict or dead letter per (scorer, judge version) out.

Decodes the entry, parses both arms once (capped: ``scorer_max_chars``), resolves the scorers,
reads the outcome markers in one round trip and scores only what has no outcome yet; every
write goes through ``judge.outcomes.Outcomes``, so a redelivered pair never gets a second one.
A scorer that raises a judge error, a record error or a bug writes a dead letter for itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from judge.config import JudgeSettings
from judge.errors import JudgeError
from judge.metrics import JudgeMetrics
from judge.outcomes import Outcomes, fields_json
from judge.routing import resolve_scorers, shortcut
from judge.scorers import AUTO, Registry, Scored, Scorer
from judge.scorers.base import ScoreContext
from judge.stats import WorkerStats
from judge.verdicts import build_verdict
from tunegate import keys
from tunegate.errors import RecordError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.records import Arm, Pair, Verdict, decode_pair

__all__ = ["UNSCORED", "Entry", "PairOutcomes"]

log = logging.getLogger(__name__)

#: judge_version of the winner-less verdicts that account for pairs nothing can score
UNSCORED = "unscored/1"
Entry = tuple[str, bytes, dict[bytes, bytes], bool]  # experiment, entry id, fields, reclaimed


class PairOutcomes:
    """Scores pair entries for one worker; shares its stats, metrics and step hook."""

    def __init__(
        self,
        config: JudgeSettings,
        experiments: dict[str, ExperimentConfig],
        registry: Registry,
        outcomes: Outcomes,
        *,
        stats: WorkerStats,
        metrics: JudgeMetrics,
        step: Callable[[str], None],
        worker: str,
    ) -> None:
        self.config = config
        self._experiments = experiments
        self._registry = registry
        self._outcomes = outcomes
        self.stats = stats
        self.metrics = metrics
        self._step = step
        self.name = worker

    async def handle(self, entry: Entry) -> None:
        """Write every outcome this entry still lacks."""
        experiment, entry_id, fields, _ = entry
        try:
            pair = decode_pair(fields)
            ctx = ScoreContext.of(pair, max_chars=self.config.scorer_max_chars)
            config = self._experiments[experiment]
            scorers = resolve_scorers(config.scorers, ctx, self._registry, config.category_scorers)
            decided = shortcut(ctx)
        except RecordError as exc:
            await self.dead_letter(
                experiment, entry_id.decode(), fields_json(fields), "bad_record", str(exc)
            )
            return
        if pair.candidate is None or pair.control is None:
            await self._unscored(pair, "unpaired")  # the proxy skipped the mirror, with a reason
            return
        if not scorers and decided is None:
            await self._unscored(pair, "no_scorer")
            return
        targets: list[Scorer | None] = [*scorers] if scorers else [None]
        versions: list[tuple[Scorer | None, str, str]] = []
        for scorer in targets:
            name = scorer.name if scorer is not None else AUTO
            try:
                version = scorer.judge_version(ctx) if scorer is not None else "shortcut/1"
            except RecordError as exc:
                await self.dead_letter(pair.experiment, pair.id, pair.model_dump_json(),
                                        "bad_record", str(exc), scorer=name)  # fmt: skip
                continue
            versions.append((scorer, name, version))
        markers = [keys.verdict_done(pair.experiment, pair.id, n, v) for _, n, v in versions]
        judged = False  # a verdict is there: the pair joins the label sample (once)
        for (scorer, name, version), done in zip(
            versions, await self._outcomes.done(markers), strict=True
        ):
            if done:  # a verdict or a dead letter is there already (a redelivered pair)
                self.stats.duplicates += 1
                judged = True
                continue
            judged = await self._score_one(ctx, scorer, name, version, decided) or judged
        if judged:
            await self._outcomes.offer_label_sample(pair.experiment, pair.id, entry_id.decode())

    async def _score_one(
        self, ctx: ScoreContext, scorer: Scorer | None, name: str, version: str,
        decided: Scored | None,
    ) -> bool:  # fmt: skip
        """Score and write one outcome; True when it was a verdict."""
        pair = ctx.pair
        try:
            scored = decided
            if scored is None:
                assert scorer is not None
                scored = await scorer.score(ctx)
        except JudgeError as exc:
            await self.dead_letter(pair.experiment, pair.id, pair.model_dump_json(), exc.reason,
                                    str(exc), scorer=name, version=version,
                                    raw=exc.raw)  # fmt: skip
            return False
        except RecordError as exc:
            await self.dead_letter(pair.experiment, pair.id, pair.model_dump_json(), "bad_record",
                                    str(exc), scorer=name, version=version)  # fmt: skip
            return False
        except StoreUnavailable:
            raise
        except Exception as exc:  # the edge of one scorer: a bug in it fails this outcome only
            log.exception("judge worker %s: scorer %s failed on pair %s", self.name, name, pair.id)
            self.stats.internal_errors += 1
            await self.dead_letter(pair.experiment, pair.id, pair.model_dump_json(),
                                    "internal_error", repr(exc), scorer=name,
                                    version=version)  # fmt: skip
            return False
        verdict = build_verdict(
            ctx, name, version, scored, rationale_max_chars=self.config.rationale_max_chars
        )
        if scored.comparison is not None:
            lengths = len(ctx.text(Arm.CANDIDATE)), len(ctx.text(Arm.CONTROL))
            self.metrics.comparison(pair.experiment, scored.comparison, *lengths)
        await self._write(verdict, keys.verdict_done(pair.experiment, pair.id, name, version))
        return True

    async def _unscored(self, pair: Pair, reason: str) -> None:
        """Account for a pair nothing can score with a verdict that has no winner.

        A single-arm pair (mirror skipped by design) or one no configured scorer applies to is
        not a judge failure, so it is no dead letter (those count against the judge's health);
        analysis ignores verdicts without a score.
        """
        verdict = Verdict(
            pair_id=pair.id,
            experiment=pair.experiment,
            scorer=AUTO,
            judge_version=UNSCORED,
            reason=reason,
            category=pair.category,
            served_arm=pair.served_arm,
            user_key_hash=pair.user_key_hash,
        )
        await self._write(verdict, keys.verdict_done(pair.experiment, pair.id, AUTO, UNSCORED))

    async def _write(self, verdict: Verdict, done: str) -> None:
        if not await self._outcomes.verdict(verdict, done):
            self.stats.duplicates += 1
            return
        self.stats.verdicts += 1
        self.metrics.verdict(verdict)
        self._step("verdict")

    async def dead_letter(
        self, experiment: str, pair_id: str, pair_json: str, reason: str, error: str,
        *, scorer: str | None = None, version: str | None = None, raw: str = "",
    ) -> None:  # fmt: skip
        log.warning("pair %s (%s) dead-lettered: %s: %s", pair_id, experiment, reason, error)
        where = {} if scorer is None else {"scorer": scorer, "judge_version": version or "-"}
        written = await self._outcomes.dead_letter(
            experiment, pair_id, pair_json, reason=reason, error=error, raw=raw, **where
        )
        if not written:
            self.stats.duplicates += 1
            return
        self.stats.dead_letters += 1
        self.metrics.dead_letters.labels(experiment, reason).inc()
        self._step("dead_letter")
