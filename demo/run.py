"""Orchestrate one demo run: train or reuse the candidate, mirror traffic, judge, decide, report.

Everything runs in this process tree: an embedded Redis (child process), the proxy under uvicorn
with both models in-process, an ``openai`` SDK client sending the held-out traffic in the shadow
stage with 100 % mirroring, a judge worker in burst mode, the rollout controller's decision
(recorded, not applied) and the HTML report. Progress bars go to the given console.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analysis.config import AnalysisSettings
from demo.errors import DemoError
from demo.generative import Prepared
from demo.stack import embedded_redis, proxy_server, wait_for_pairs
from demo.summary import CategoryFigures, arm_scores, category_figures, read_pairs, read_verdicts
from demo.traffic import Sent, send_traffic
from judge.config import JudgeEndpoint, JudgeSettings
from proxy.config import MirrorSettings, ProxySettings
from tunegate.experiments import Policy
from tunegate.records import Decision, Stage

if TYPE_CHECKING:
    from analysis.evidence import Evidence
from cli.settings import Settings
from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.redis import RedisSettings

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

#: Programmatic scorers take milliseconds a pair; an LLM judge seconds. Beyond this, give up.
JUDGE_TIMEOUT_S = 900.0


@dataclass
class DemoOptions:
    """What one run does; the CLI fills it from flags."""

    workdir: Path = Path(".tunegate/demo")
    embeddings: bool = False
    quick: bool = False
    steps: int | None = None  # training steps; None: the experiment's default
    items: int | None = None  # held-out items of the task; None: the experiment's default
    probes: int | None = None
    cache_dir: Path | None = None
    retrain: bool = False
    judge: JudgeEndpoint | None = None
    tolerance: float = 0.05
    concurrency: int = 8
    offline: bool = True  # run the offline gate (tunegate eval) before any traffic


@dataclass
class DemoResult:
    """What the run found: the decision, the per-category figures and where the report is."""

    experiment: str
    decision: Decision
    figures: list[CategoryFigures]
    report: Path
    candidate: str
    reused: bool
    train_seconds: float
    final_loss: float | None
    sent: int
    failed: list[str]
    llm_judge: str | None
    policy: Policy
    timings: dict[str, float] = field(default_factory=dict)
    offline: dict[str, object] | None = None  # the offline gate's outcome, before traffic

    def to_json(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "action": self.decision.action.value,
            "stage_after": self.decision.stage_after.value,
            "reason": self.decision.reason,
            "reasons": self.decision.reasons,
            "categories": [f.to_json() for f in self.figures],
            "report": str(self.report),
            "candidate": self.candidate,
            "adapter_reused": self.reused,
            "train_seconds": round(self.train_seconds, 1),
            "final_loss": self.final_loss,
            "sent": self.sent,
            "failed": self.failed,
            "llm_judge": self.llm_judge,
            "policy": self.policy.model_dump(mode="json"),
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "evidence": self.decision.evidence,
            "offline": self.offline,
        }


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


async def _prepare(options: DemoOptions, progress: Progress) -> Prepared:
    if options.embeddings:
        from demo.retrieval import prepare_retrieval

        task = progress.add_task("fine-tune MiniLM", total=None, note="")
        prepared = await asyncio.to_thread(
            prepare_retrieval,
            steps=options.steps,
            queries=options.items,
            cache_dir=options.cache_dir,
            force=options.retrain,
            on_step=lambda s, n, loss: progress.update(
                task, completed=s, total=n, note=f"loss {loss:.3f}"
            ),
        )
    else:
        from demo.generative import prepare_generative
        from demo.train_lora import LoraConfig

        config = LoraConfig() if options.steps is None else LoraConfig(steps=options.steps)
        task = progress.add_task("train LoRA adapter", total=config.steps, note="")
        prepared = await asyncio.to_thread(
            prepare_generative,
            config,
            tickets=options.items,
            probes=options.probes,
            cache_dir=options.cache_dir,
            force=options.retrain,
            on_step=lambda s, n, loss: progress.update(task, completed=s, note=f"loss {loss:.3f}"),
        )
    note = f"reused from cache: {prepared.candidate}" if prepared.reused else "trained"
    progress.update(task, completed=progress.tasks[task].total or 1, total=None, note=note)
    return prepared


def _settings(prepared: Prepared, options: DemoOptions, redis: RedisSettings) -> Settings:
    control, candidate = list(prepared.upstreams)
    policy = Policy(
        min_pairs=max(1, len(prepared.items)),
        category_regression_tolerance=options.tolerance,
        require_offline_pass=options.offline,
    )
    experiment = ExperimentConfig(
        name=prepared.experiment,
        control=ArmConfig(upstream=control),
        candidate=ArmConfig(upstream=candidate),
        stage=Stage.SHADOW,
        mirror_rate=1.0,
        sticky_key="none",
        # probes carry short key answers that the base model wraps in a sentence
        category_scorers={"probe": ["contains"]},
        policy=policy,
    )
    # shadow copies wait behind served requests on a busy CPU: give them the upstream's patience
    mirror = MirrorSettings(timeout_seconds=600.0)
    return Settings(
        redis=redis,
        upstreams=prepared.upstreams,
        proxy=ProxySettings(mirror=mirror),
        experiments=[experiment],
        judge=JudgeSettings(endpoint=options.judge),
        analysis=AnalysisSettings(report_dir=str(options.workdir / "reports")),
    )


async def _mirror(
    settings: Settings,
    prepared: Prepared,
    options: DemoOptions,
    client: aioredis.Redis,
    progress: Progress,
) -> tuple[int, list[str]]:
    """Send the traffic through a running proxy; wait until every served pair is logged."""
    async with proxy_server(settings) as base_url:
        task = progress.add_task("mirror traffic", total=len(prepared.items), note="")

        def sent(item: Sent) -> None:
            progress.advance(task)

        results = await send_traffic(
            base_url,
            prepared.experiment,
            prepared.items,
            concurrency=options.concurrency,
            max_tokens=prepared.max_tokens,
            on_sent=sent,
        )
        served = sum(r.pair_id is not None for r in results)
        failed = [r.error or "no pair id" for r in results if r.pair_id is None]
        if not served:
            raise DemoError(f"no request got through the proxy: {failed[0]}")
        await wait_for_pairs(client, prepared.experiment, served, 600.0)
    return served, failed


async def _judge_and_decide(
    settings: Settings, experiment: str, client: aioredis.Redis, progress: Progress
) -> tuple[Decision, Evidence, list[CategoryFigures]]:
    """Drain the pairs with a judge worker, then decide (recorded, not applied)."""
    from analysis.controller import Controller
    from analysis.evidence import load_evidence
    from judge.worker import JudgeWorker

    task = progress.add_task("judge pairs", total=None, note="burst")
    async with JudgeWorker(
        settings.judge, settings.experiments, client, retention=settings.retention
    ) as worker:
        try:
            async with asyncio.timeout(JUDGE_TIMEOUT_S):
                stats = await worker.run(until_idle=True)
        except TimeoutError:
            raise DemoError(
                f"the judge did not drain the pairs in {JUDGE_TIMEOUT_S:.0f}s"
            ) from None
    progress.update(task, total=stats.read, completed=stats.read, note=f"{stats.verdicts} verdicts")
    decision = await Controller(settings.experiments, client, retention=settings.retention).step(
        experiment, apply=False
    )
    evidence = await load_evidence(client, experiment)
    config = settings.experiment(experiment)
    by_category = config.category_scorers if config is not None else {}
    scores = await arm_scores(await read_pairs(client, experiment), by_category)
    figures = category_figures(await read_verdicts(client, experiment), scores)
    return decision, evidence, figures


async def run_demo(options: DemoOptions, console: Console) -> DemoResult:
    """One complete demo run; raises DemoError (or another TunegateError) when a step fails."""
    from analysis.report import render_html

    timings: dict[str, float] = {}
    start = time.perf_counter()
    with _progress(console) as progress:
        prepared = await _prepare(options, progress)
        timings["prepare"] = time.perf_counter() - start
        async with embedded_redis(options.workdir / "redis") as redis_settings:
            settings = _settings(prepared, options, redis_settings)
            assert redis_settings.url is not None
            client = aioredis.Redis.from_url(redis_settings.url.get_secret_value())
            try:
                offline = None
                if options.offline:
                    from demo.offline import offline_gate

                    mark = time.perf_counter()
                    offline = await offline_gate(
                        prepared, settings, options.workdir, console, progress
                    )
                    timings["offline"] = time.perf_counter() - mark
                mark = time.perf_counter()
                served, failed = await _mirror(settings, prepared, options, client, progress)
                timings["traffic"] = time.perf_counter() - mark
                mark = time.perf_counter()
                decision, evidence, figures = await _judge_and_decide(
                    settings, prepared.experiment, client, progress
                )
                timings["judge_and_decide"] = time.perf_counter() - mark
            finally:
                await client.aclose()
    policy = settings.experiments[0].policy
    report = await asyncio.to_thread(
        render_html, policy, evidence, decision, options.workdir / "reports"
    )
    timings["total"] = time.perf_counter() - start
    return DemoResult(
        experiment=prepared.experiment,
        decision=decision,
        figures=figures,
        report=report.resolve(),
        candidate=prepared.candidate,
        reused=prepared.reused,
        train_seconds=prepared.train_seconds,
        final_loss=prepared.final_loss,
        sent=served,
        failed=failed,
        llm_judge=options.judge.model if options.judge else None,
        policy=policy,
        timings=timings,
        offline=offline,
    )
