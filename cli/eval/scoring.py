"""Score both arms' answers: the metric registry, joining the judge plane's scorers and the
offline metrics, per item so the comparison is paired.

Metrics the live path already has come from the judge plane: ``json_fields``, ``contains``,
``normalized``, ``exact`` and ``regex`` are its programmatic scorers, applied to each arm's text
alone; ``field_accuracy`` and ``json_exact`` use its JSON extraction (fenced blocks and prose
allowed; an answer holding no JSON object scores 0); ``pairwise`` is its LLM judge, both orders.
The rest are analysis/offline/metrics.py (scikit-learn, rouge-score, sacrebleu, rubric checks)
and metrics_code.py (pass@k, executed in a sandbox).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.offline.cache import CachedOutput, OutputCache, output_key
from analysis.offline.compare import MetricScores
from analysis.offline.items import EvalItem
from analysis.offline.metrics import (
    MetricKind,
    bleu_statistic,
    chrf_statistic,
    exact_match,
    macro_f1_statistic,
    normalize_label,
    rouge_l,
    rubric_score,
)
from analysis.offline.metrics_code import extract_code, pass_at_k, run_tests
from judge.pairwise import PairJudge
from judge.prompts import JudgeInput
from judge.scorers import build_registry
from judge.scorers.base import ArmScorer
from judge.scorers.json_fields import field_accuracy, reference_object, response_object

__all__ = ["METRICS", "CodeRunner", "Outputs", "known_metric", "score_metric"]

Outputs = dict[tuple[str, str, int], CachedOutput]
TextMetric = Callable[[str, EvalItem], float]

_SCORERS = build_registry()


def _judge_scorer(name: str) -> TextMetric:
    scorer = _SCORERS[name]
    assert isinstance(scorer, ArmScorer)
    return lambda text, item: scorer.score_text(text, item.reference or "")


def _field_accuracy(text: str, item: EvalItem) -> float:
    reference = reference_object(item.reference)
    answer = response_object(text)
    if reference is None or answer is None:
        return 0.0  # malformed JSON (or no object at all) scores 0
    return field_accuracy(answer, reference)


def _json_exact(text: str, item: EvalItem) -> float:
    reference = reference_object(item.reference)
    answer = response_object(text)
    if reference is None or answer is None or set(answer) != set(reference):
        return 0.0
    return float(field_accuracy(answer, reference) == 1.0)


def _accuracy(text: str, item: EvalItem) -> float:
    return float(normalize_label(text) == normalize_label(item.reference or ""))


_CONTAINS = _judge_scorer("contains")


def _probe(text: str, item: EvalItem) -> float:
    """A probe's own check: its rubric when it has one, else its key answer as whole words."""
    if item.checks:
        return float(rubric_score(text, item.checks) == 1.0)
    return _CONTAINS(text, item)


#: name -> (kind, per-item function of (text, item)); corpus and code metrics are handled apart.
METRICS: dict[str, tuple[MetricKind, TextMetric]] = {
    "exact_match": (MetricKind.BINARY, lambda t, i: exact_match(t, i.reference or "")),
    "accuracy": (MetricKind.BINARY, _accuracy),
    "exact": (MetricKind.BINARY, _judge_scorer("exact")),
    "normalized": (MetricKind.BINARY, _judge_scorer("normalized")),
    "contains": (MetricKind.BINARY, _judge_scorer("contains")),
    "regex": (MetricKind.BINARY, _judge_scorer("regex")),
    "json_fields": (MetricKind.CONTINUOUS, _judge_scorer("json_fields")),
    "field_accuracy": (MetricKind.CONTINUOUS, _field_accuracy),
    "json_exact": (MetricKind.BINARY, _json_exact),
    "rouge_l": (MetricKind.CONTINUOUS, lambda t, i: rouge_l(t, i.reference or "")),
    "rubric": (MetricKind.CONTINUOUS, lambda t, i: rubric_score(t, i.checks or [])),
    "rubric_all": (MetricKind.BINARY, lambda t, i: float(rubric_score(t, i.checks or []) == 1)),
    "probe": (MetricKind.BINARY, _probe),
}
CORPUS = ("macro_f1", "bleu", "chrf")
_PASS_AT = re.compile(r"^pass@(\d+)$")


def known_metric(name: str) -> bool:
    return name in METRICS or name in CORPUS or name == "pairwise" or bool(_PASS_AT.match(name))


@dataclass(slots=True)
class CodeRunner:
    """Runs answers' code with the item's tests in the sandbox, at most ``parallel`` at once.

    Results are kept per (code, tests) for the run: the same answer is executed once, however
    many samples or pass@k metrics share it.
    """

    timeout_s: float = 5.0
    memory_mb: int = 512
    parallel: int = 2
    executed: int = 0
    _runs: dict[tuple[str, str], asyncio.Future[bool]] = field(default_factory=dict)
    _gate: asyncio.Semaphore | None = None

    async def passed(self, code: str, tests: str) -> bool:
        key = (code, tests)
        run = self._runs.get(key)
        if run is None:  # the first asker runs it; the others await the same future
            run = self._runs[key] = asyncio.get_running_loop().create_future()
            self._gate = self._gate or asyncio.Semaphore(self.parallel)
            async with self._gate:
                self.executed += 1
                result = await asyncio.to_thread(
                    run_tests, code, tests, timeout_s=self.timeout_s, memory_mb=self.memory_mb
                )
            run.set_result(result.passed)
        return await run


def _text(outputs: Outputs, arm: str, item: EvalItem, sample: int = 0) -> str:
    out = outputs.get((arm, item.id, sample))
    return "" if out is None or out.error is not None else out.text


async def _pass_at(
    k: int, items: Sequence[EvalItem], outputs: Outputs, runner: CodeRunner
) -> tuple[np.ndarray, np.ndarray]:
    async def passed(arm: str, item: EvalItem, sample: int) -> bool:
        return await runner.passed(
            extract_code(_text(outputs, arm, item, sample)), item.tests or ""
        )

    values: dict[str, list[float]] = {"control": [], "candidate": []}
    for arm, column in values.items():
        for item in items:
            if item.k < k:
                raise ValueError(f"item {item.id}: pass@{k} needs k >= {k} samples, has {item.k}")
            results = await asyncio.gather(*(passed(arm, item, s) for s in range(item.k)))
            column.append(pass_at_k(item.k, sum(results), k))
    return np.array(values["control"]), np.array(values["candidate"])


async def score_metric(
    name: str,
    items: Sequence[EvalItem],
    outputs: Outputs,
    *,
    judge: PairJudge | None = None,
    experiment: str = "offline",
    code: CodeRunner | None = None,
    cache: OutputCache | None = None,
) -> MetricScores:
    """One metric on ``items`` for both arms; an arm's failed call scores as an empty answer."""
    ids = [i.id for i in items]
    categories = [i.category for i in items]
    if name in METRICS:
        kind, fn = METRICS[name]
        control = np.array([fn(_text(outputs, "control", i), i) for i in items], dtype=float)
        candidate = np.array([fn(_text(outputs, "candidate", i), i) for i in items], dtype=float)
        return MetricScores(name, kind, ids, categories, control, candidate)
    if name in CORPUS:
        refs = [i.reference or "" for i in items]
        stats = []
        for arm in ("control", "candidate"):
            texts = [_text(outputs, arm, i) for i in items]
            if name == "macro_f1":
                stat = macro_f1_statistic([normalize_label(t) for t in texts],
                                          [normalize_label(r) for r in refs])  # fmt: skip
            elif name == "bleu":
                stat = bleu_statistic(texts, refs)
            else:
                stat = chrf_statistic(texts, refs)
            stats.append(stat)
        return MetricScores(
            name, MetricKind.CORPUS, ids, categories, stats[0].stats, stats[1].stats,
            reduce=stats[0].reduce,
        )  # fmt: skip
    match = _PASS_AT.match(name)
    if match:
        control, candidate = await _pass_at(
            int(match.group(1)), items, outputs, code or CodeRunner()
        )
        kind = MetricKind.BINARY if all(i.k == 1 for i in items) else MetricKind.CONTINUOUS
        return MetricScores(name, kind, ids, categories, control, candidate)
    if name == "pairwise":
        if judge is None:
            raise ValueError("metric pairwise needs a calibrated judge (judge.endpoint)")
        judged = judge

        async def one(item: EvalItem) -> float:
            question = item.prompt or str(item.user_messages()[-1].get("content", ""))
            judge_input = JudgeInput(question=question, reference=item.reference)
            candidate, control = _text(outputs, "candidate", item), _text(outputs, "control", item)
            version = getattr(judged, "version_for", None)
            request: dict[str, object] = {
                "judge": version(judge_input) if version is not None else judged.model,
                "question": question,
                "reference": item.reference,
                "candidate": candidate,
                "control": control,
            }
            key = output_key("judge", "judge", judged.model, request, item.id, 0)
            hit = cache.get(key) if cache is not None else None
            if hit is not None and isinstance(hit.extra.get("score"), int | float):
                return float(hit.extra["score"])  # type: ignore[arg-type]  # checked above
            result = await judged.compare(experiment, judge_input, candidate, control)
            if cache is not None:  # a re-run asks the judge nothing either
                cache.put(
                    CachedOutput(key=key, arm="judge", item=item.id, extra={"score": result.score})
                )
            return result.score

        scores = np.array(await asyncio.gather(*(one(i) for i in items)), dtype=float)
        return MetricScores(name, MetricKind.JUDGE, ids, categories, 1 - scores, scores)
    raise ValueError(f"unknown metric {name!r}")
