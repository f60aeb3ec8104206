"""One offline evaluation: load and check the sets, ask both arms, score, compare, decide, report.

The stages, in order: the test sets (manifest verified; contamination against the training
files), the probe suites, the minimum detectable effect (printed before any model call), both
arms' answers through the proxy's upstream clients (cached: a re-run makes no calls), the scores
(judge-plane scorers, offline metrics, the calibrated pairwise judge), the paired comparisons and
the outcome, then report.json, summary.md, report.html and run.json in the output folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import Progress

from analysis.offline.cache import OutputCache
from analysis.offline.compare import MetricScores, Role, Scored, compare_metric
from analysis.offline.items import EvalItem, load_items
from analysis.offline.outcome import Result, decide_outcome
from analysis.offline.paired import minimum_detectable_effect
from analysis.offline.report.contract import ItemRow, build_report, dumps
from analysis.offline.spec import EvalSpec
from cli.eval.arms import ArmClients, generate
from cli.eval.progress import StageProgress
from cli.eval.scoring import CodeRunner, Outputs, known_metric, score_metric
from cli.settings import Settings
from judge.pairwise import PairJudge
from proxy.config import UpstreamConfig
from tunegate.errors import ConfigError

__all__ = ["EvalRun", "EvalSet", "evaluate", "upstream_configs"]


@dataclass(slots=True)
class EvalSet:
    """A loaded set: its items, role, metrics per category and what the checks found."""

    name: str
    role: Role
    items: list[EvalItem]
    metrics: dict[str, list[str]]  # category -> metrics
    clean: set[str] | None = None  # contamination: the ids of the clean items
    bare_control: bool = False  # the control answers without its prompt (probe suites)
    notes: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class EvalRun:
    """What ``evaluate`` returns: the outcome, the JSON document and where the files are."""

    result: Result
    document: dict[str, object]
    out_dir: Path
    run: dict[str, object]


def upstream_configs(settings: Settings, spec: EvalSpec) -> dict[str, UpstreamConfig]:
    """The root upstreams plus the spec's own; both arms must name one of them."""
    from pydantic import ValidationError

    from cli.settings import format_validation_error

    configs = dict(settings.upstreams)
    for name, raw in spec.upstreams.items():
        try:
            configs[name] = UpstreamConfig.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(
                f"upstreams.{name}: {format_validation_error(exc).replace(chr(10), '; ')}"
            ) from None
    for arm in ("control", "candidate"):
        upstream = getattr(spec, arm).upstream
        if upstream not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"{arm}.upstream: unknown upstream {upstream!r} (known: {known})")
    return configs


def _task_sets(spec: EvalSpec) -> list[EvalSet]:
    sets = []
    for test in spec.tests:
        items = load_items(test.path, test.limit)
        if test.manifest is not None:
            from cli.eval.hygiene import verify_manifest

            verify_manifest(test.manifest, test.path)
        by_category = {c: test.metrics_for(c) for c in sorted({i.category for i in items})}
        for metrics in by_category.values():
            for metric in metrics:
                if not known_metric(metric):
                    raise ConfigError(f"tests.{test.name}: unknown metric {metric!r}")
        sets.append(EvalSet(test.name, "task", items, by_category))
    return sets


def _probe_sets(spec: EvalSpec) -> list[EvalSet]:
    from analysis.offline.probes import metric_for
    from cli.eval.hygiene import probe_items

    sets = []
    for i, suite in enumerate(spec.probes):
        items = probe_items(suite.suite, suite.limit_per_category)
        name = "probes" if len(spec.probes) == 1 else f"probes-{i}"
        metrics: dict[str, list[str]] = {}
        for item in items:  # code probes run their tests (pass@1), the rest their checks
            metrics.setdefault(item.category, [metric_for(item)])
        sets.append(EvalSet(name, "probe", items, metrics, bare_control=suite.bare_control))
    return sets


def _mde(sets: list[EvalSet], spec: EvalSpec) -> list[dict[str, object]]:
    rows = []
    for s in sets:
        n = len(s.items)
        if n < 2:
            continue
        tests = sum(len(m) for m in s.metrics.values()) * max(1, len(s.metrics))
        rows.append(
            {
                "set": s.name,
                "role": s.role,
                "n": n,
                "mde": minimum_detectable_effect(
                    n, alpha=spec.alpha, power=spec.power, tests=max(1, tests)
                ),
            }
        )
    return rows


async def _score_set(
    s: EvalSet,
    outputs: Outputs,
    spec: EvalSpec,
    judge: PairJudge | None,
    code: CodeRunner,
    cache: OutputCache,
) -> tuple[list[Scored], dict[str, dict[str, tuple[float, float]]]]:
    """Every metric of the set, compared overall and per category; per-item values for rows."""
    scored: list[Scored] = []
    values: dict[str, dict[str, tuple[float, float]]] = {i.id: {} for i in s.items}
    metrics = sorted({m for ms in s.metrics.values() for m in ms})
    for metric in metrics:
        items = [i for i in s.items if metric in s.metrics[i.category]]
        scores = await score_metric(
            metric, items, outputs, judge=judge, experiment=spec.name, code=code, cache=cache
        )
        if scores.control.ndim == 1:
            for item_id, a, b in zip(scores.items, scores.control, scores.candidate, strict=True):
                values[item_id][metric] = (float(a), float(b))
        scored += compare_metric(
            s.name,
            s.role,
            scores,
            alpha=spec.alpha,
            acceptable_drop=spec.thresholds.probe_acceptable_drop,
            resamples=spec.bootstrap_resamples,
            seed=spec.seed,
            overall=s.role == "task",
        )
        if s.clean is not None and len(s.clean) < len(items):
            clean = [k for k, item in enumerate(items) if item.id in s.clean]
            if len(clean) >= 2:
                subset = _subset(scores, clean)
                for extra in compare_metric(
                    f"{s.name}:clean",
                    s.role,
                    subset,
                    alpha=spec.alpha,
                    acceptable_drop=spec.thresholds.probe_acceptable_drop,
                    resamples=spec.bootstrap_resamples,
                    seed=spec.seed,
                ):
                    extra.primary = False  # reported beside the full set, not gating twice
                    scored.append(extra)
    return scored, values


def _subset(scores: MetricScores, rows: list[int]) -> MetricScores:
    return MetricScores(
        scores.metric,
        scores.kind,
        [scores.items[r] for r in rows],
        [scores.categories[r] for r in rows],
        scores.control[rows],
        scores.candidate[rows],
        scores.reduce,
    )


def _rows(
    s: EvalSet, outputs: Outputs, values: dict[str, dict[str, tuple[float, float]]]
) -> list[ItemRow]:
    rows = []
    for item in s.items:
        control = outputs.get(("control", item.id, 0))
        candidate = outputs.get(("candidate", item.id, 0))
        errors = {
            arm: out.error
            for arm, out in (("control", control), ("candidate", candidate))
            if out is not None and out.error is not None
        }
        rows.append(
            ItemRow(
                set=s.name,
                role=s.role,
                id=item.id,
                category=item.category,
                prompt=item.prompt or str(item.user_messages()[-1].get("content", "")),
                reference=item.reference,
                control="" if control is None else control.text,
                candidate="" if candidate is None else candidate.text,
                scores=values.get(item.id, {}),
                errors=errors,
            )
        )
    return rows


def _data_failures(sections: dict[str, object]) -> list[str]:
    found = sections.get("contamination")
    failures = []
    for name, check in found.items() if isinstance(found, dict) else []:
        if isinstance(check, dict) and check.get("failed"):
            failures.append(
                f"{name}: {check['share']:.1%} of the test items are in the training files"
                f" (threshold {check['threshold']:.0%}); see contamination in the report"
            )
    return failures


async def evaluate(
    spec: EvalSpec,
    settings: Settings,
    console: Console,
    *,
    judge: PairJudge | None = None,
    progress_bars: Progress | None = None,
) -> EvalRun:
    """The whole evaluation; writes the reports to ``spec.out_dir``."""
    started = time.perf_counter()
    configs = upstream_configs(settings, spec)
    sets = _task_sets(spec) + _probe_sets(spec)
    sections: dict[str, object] = {}
    if spec.training_files:
        from cli.eval.hygiene import contamination

        sections["contamination"] = contamination(spec, sets)
    mde = _mde(sets, spec)
    for row in mde:
        console.print(
            f"minimum detectable effect on {row['set']} ({row['n']} items, alpha {spec.alpha},"
            f" power {spec.power}): {row['mde']:.3f}"
        )
    all_items = [i for s in sets for i in s.items]
    cache = OutputCache(spec.cache_dir)
    arms = {"control": spec.control, "candidate": spec.candidate}
    scored: list[Scored] = []
    rows: list[ItemRow] = []
    failures: list[str] = []
    outputs: Outputs = {}
    with StageProgress(console, progress_bars) as progress:
        async with ArmClients(arms, configs) as clients:
            if spec.endpoint == "embeddings":
                from cli.eval.embedding import evaluate_embeddings

                with cache, progress.stage("embeddings", 0) as stage:
                    found = await evaluate_embeddings(
                        spec, clients, cache, on_done=lambda out: stage.advance()
                    )
                scored += found.scored
                sections.update(found.sections)
                failures += found.failures
            else:
                with cache, progress.stage("answers", sum(2 * i.k for i in all_items)) as stage:
                    outputs = await generate(
                        clients,
                        cache,
                        all_items,
                        spec.decoding,
                        bare={i.id for s in sets if s.bare_control for i in s.items},
                        seed=spec.seed,
                        concurrency=spec.concurrency,
                        on_done=lambda out: stage.advance("failed" if out.error else None),
                    )
        code = CodeRunner(spec.code.timeout_seconds, spec.code.memory_mb, spec.code.parallel)
        with cache, progress.stage("scores", len(sets)) as stage:  # the judge's verdicts: cached
            for s in sets:
                found_scored, values = await _score_set(s, outputs, spec, judge, code, cache)
                scored += found_scored
                rows += _rows(s, outputs, values)
                stage.advance()
    if spec.trainer_log is not None:
        from cli.eval.hygiene import training_curves

        sections["training"] = training_curves(spec)
    result = decide_outcome(
        scored,
        alpha=spec.alpha,
        probe_fail_drop=spec.thresholds.probe_fail_drop,
        power=spec.power,
        failures=[*_data_failures(sections), *failures],
    )
    training = sections.get("training")
    if isinstance(training, dict) and training.get("warnings"):
        result.reasons += [f"Training: {w}" for w in training["warnings"]]
    sections["sets"] = [
        {
            "name": s.name,
            "role": s.role,
            "items": len(s.items),
            "metrics": s.metrics,
            "bare_control": s.bare_control,
            **s.notes,
        }
        for s in sets
    ]
    failed = sum(1 for out in outputs.values() if out.error is not None)
    document = build_report(spec, result, rows, mde=mde, sections=sections)
    run: dict[str, object] = {
        "model_calls": clients.calls,
        "cache_hits": cache.hits,
        "failed_answers": failed,
        "code_runs": code.executed,
        "seconds": {**progress.seconds, "total": time.perf_counter() - started},
    }
    out_dir = spec.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_bytes(dumps(document))
    (out_dir / "run.json").write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))
    return EvalRun(result, document, out_dir, run)
