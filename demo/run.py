"""Orchestrate one demo run: train or reuse the candidates, gate them offline, roll them out live.

Everything runs in this process tree: an embedded Redis (child process), the proxy under uvicorn
with every model in-process, the offline gate (``tunegate eval``) per candidate, then the live
rounds (demo/rollout.py): the shadow stage with 100 % mirroring, and A/B rounds with sticky
simulated users for a candidate the controller moves on, until it is promoted or rolled back.
Each decision is applied by the rollout controller; each experiment gets its HTML report.
Progress goes to the given console: bars on a terminal, a line per stage otherwise.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress, TaskID

from analysis.config import AnalysisSettings
from cli.settings import Settings
from demo.generative import BATCH, Prepared
from demo.progress import Stopwatch, demo_progress
from demo.rollout import Live, live_rounds
from demo.stack import embedded_redis, proxy_server
from demo.summary import CategoryFigures, arm_scores, category_figures, read_pairs, read_verdicts
from judge.config import JudgeEndpoint, JudgeSettings
from proxy.config import MirrorSettings, ProxySettings, UpstreamConfig
from tunegate.experiments import ArmConfig, ExperimentConfig, Policy
from tunegate.records import Decision, Stage
from tunegate.redis import RedisSettings

__all__ = ["DEMO_TOLERANCE", "CandidateResult", "DemoOptions", "DemoResult", "run_demo"]

#: how often the demo's proxy re-reads the experiment state the controller writes
STATE_REFRESH_S = 0.25

#: The demo's per-category regression tolerance. A category blocks a stage change while its net
#: estimate is within one standard error (at least 0.5 / sqrt(n)) of the tolerance: at the
#: demo's 36 shadow probes that is 8.3 points, so a 5-point tolerance would block even a candidate
#: that ties every probe. Ten points let one that ties them through, and still roll back the
#: tickets-only candidate's drop (net about -67 %).
DEMO_TOLERANCE = 0.1


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
    retrain: bool = False  # train even if cached (implies train)
    train: bool = False  # train (or reuse from the cache) instead of the shipped adapters
    judge: JudgeEndpoint | None = None
    tolerance: float = DEMO_TOLERANCE
    concurrency: int = BATCH  # requests in flight: one full batch
    offline: bool = True  # run the offline gate (tunegate eval) before any traffic
    ab_rounds: int = 4  # A/B rounds at most for a candidate the controller moves on
    users: int = 800  # the A/B stage's simulated users: each asks one question a round
    keep_open: bool = False  # leave Redis and the proxy running, the web console open
    #: answer an identical temperature-0 request on the same weights from the in-process memo
    #: (proxy/upstream/local/memo.py): control's answers are shared by both experiments and
    #: stages, each candidate's by its offline gate and its live rounds; counted in the result
    reuse_answers: bool = True


@dataclass
class CandidateResult:
    """One candidate's story: offline gate, every live decision, figures and report."""

    experiment: str
    candidate: str
    reused: bool
    train_seconds: float
    final_loss: float | None
    decisions: list[Decision]
    figures: list[CategoryFigures]
    report: Path
    sent: int
    failed: list[str]
    feedback: int
    policy: Policy
    offline: dict[str, object] | None = None
    source: str = "trained"  # where the adapter came from: shipped, cache or trained

    @property
    def decision(self) -> Decision:
        return self.decisions[-1]

    def to_json(self) -> dict[str, object]:
        d = self.decision
        return {
            "experiment": self.experiment,
            "action": d.action.value,
            "stage_after": d.stage_after.value,
            "reason": d.reason,
            "reasons": d.reasons,
            "decisions": [
                {
                    "action": x.action.value,
                    "stage_before": x.stage_before.value,
                    "stage_after": x.stage_after.value,
                    "weight_before": x.weight_before,
                    "weight_after": x.weight_after,
                    "applied": x.applied,
                    "reasons": x.reasons,
                }
                for x in self.decisions
            ],
            "categories": [f.to_json() for f in self.figures],
            "report": str(self.report),
            "candidate": self.candidate,
            "adapter_reused": self.reused,
            "adapter_source": self.source,
            "train_seconds": round(self.train_seconds, 1),
            "final_loss": self.final_loss,
            "sent": self.sent,
            "failed": self.failed,
            "feedback": self.feedback,
            "policy": self.policy.model_dump(mode="json"),
            "evidence": d.evidence,
            "offline": self.offline,
        }


@dataclass
class DemoResult:
    """What the run found: per candidate, its decisions, figures and report; and the timings.

    The top-level fields are the first candidate's (the shape ``--json`` always had).
    """

    candidates: list[CandidateResult]
    llm_judge: str | None
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)
    #: the web console on the demo's proxy and its admin token (with ``keep_open`` only)
    console_url: str | None = None
    console_token: str | None = None
    #: per model (``base`` or the adapter's directory): greedy answers decoded and reused
    answers: dict[str, dict[str, int]] = field(default_factory=dict)
    reuse_answers: bool = False

    def answer_totals(self) -> tuple[int, int]:
        """(computed, reused) answers over every model of the run."""
        computed = sum(a["computed"] for a in self.answers.values())
        return computed, sum(a["reused"] for a in self.answers.values())

    def to_json(self) -> dict[str, object]:
        computed, reused = self.answer_totals()
        return {
            **self.candidates[0].to_json(),
            "llm_judge": self.llm_judge,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "cpu_timings": {k: round(v, 1) for k, v in self.cpu_timings.items()},
            "answers": {
                "reuse": self.reuse_answers,
                "computed": computed,
                "reused": reused,
                "models": self.answers,
            },
            "candidates": [c.to_json() for c in self.candidates],
            "console_url": self.console_url,
            "console_token": self.console_token,
        }


async def _prepare(options: DemoOptions, progress: Progress) -> list[Prepared]:
    if options.embeddings:
        from demo.retrieval import prepare_retrieval

        bar = progress.add_task("fine-tune MiniLM", total=None, note="")
        prepared = await asyncio.to_thread(
            prepare_retrieval,
            steps=options.steps,
            queries=options.items,
            cache_dir=options.cache_dir,
            force=options.retrain,
            on_step=lambda s, n, loss: progress.update(
                bar, completed=s, total=n, note=f"loss {loss:.3f}"
            ),
        )
        note = f"reused from cache: {prepared.candidate}" if prepared.reused else "trained"
        progress.update(bar, total=None, note=note)
        return [prepared]
    from demo.generative import CANDIDATES, prepare_generative

    head = progress.add_task("candidates: load the base model, train or reuse", total=None, note="")
    tasks: dict[str, TaskID] = {}

    def task(name: str) -> TaskID:  # a bar appears when its adapter's training starts
        if name not in tasks:
            tasks[name] = progress.add_task(f"train LoRA adapter '{name}'", total=None, note="")
        return tasks[name]

    def step(name: str, s: int, n: int, loss: float) -> None:
        progress.update(task(name), completed=s, total=n, note=f"loss {loss:.3f}")

    prepared_list = await asyncio.to_thread(
        prepare_generative,
        options.steps,
        tickets=options.items,
        probes=options.probes,
        cache_dir=options.cache_dir,
        force=options.retrain,
        train=options.train,
        on_step=step,
        rounds=options.ab_rounds,
    )
    for name, p in zip(CANDIDATES, prepared_list, strict=True):
        if p.source == "shipped":
            progress.update(head, note=f"'{name}': the shipped adapter (sha256 checked)")
            continue
        note = f"reused from cache: {p.candidate}" if p.reused else "trained"
        progress.update(task(name), total=None, note=note)
    progress.update(head, note="ready")
    return prepared_list


def _policy(prepared: Prepared, options: DemoOptions) -> Policy:
    """The demo's pre-registered policy: the default, sized to the traffic one run sends.

    The burn-in is the shadow stage's items; a ramp step needs an eighth of an A/B round's
    requests served by the candidate (half of what the first weight, 25 %, serves it)."""
    n = max(1, len(prepared.items))
    per_round = len(prepared.round_items(1))
    return Policy(
        min_pairs=n,
        category_regression_tolerance=options.tolerance,
        require_offline_pass=options.offline,
        min_exposure_per_stage=max(2, per_round // 8),
        min_rollback_pairs=min(20, n),
        min_live_users=max(2, min(30, options.users // 6)),
        success_metric="judge_and_live",
        # a CPU-bound demo: the arms queue behind each other, so latency and tokens get room.
        # Most A/B requests are answered from the memo: 0.3 ms served, 40-50 ms as a shadow
        # copy (its queue and batch window), so a relative margin alone cannot hold; 250 ms of
        # absolute slack, far below a decoded answer's seconds
        latency_p95_margin=1.0,
        latency_p95_slack_s=0.25,
        tokens_margin=1.0,
        error_rate_margin=0.1,
        live_margin=0.1,
    )


def _reusing(config: UpstreamConfig) -> UpstreamConfig:
    """``config`` with its in-process model answering repeated greedy requests from the memo."""
    if config.local is None or config.local.kind != "causal_lm":
        return config
    return config.model_copy(
        update={"local": config.local.model_copy(update={"reuse_greedy": True})}
    )


def _answer_counts() -> dict[str, dict[str, int]]:
    """The in-process models' memo counters (none loaded: the embeddings demo)."""
    import sys

    if "proxy.upstream.local.loading" not in sys.modules:  # never import torch just to say 0
        return {}
    from proxy.upstream.local.loading import greedy_memo_stats

    return {
        name: {"computed": s.computed, "reused": s.reused}
        for name, s in greedy_memo_stats().items()
    }


def _settings(
    prepared: list[Prepared], options: DemoOptions, redis: RedisSettings, admin_token: str
) -> Settings:
    experiments, upstreams = [], {}
    for p in prepared:
        control, candidate = list(p.upstreams)
        upstreams.update(p.upstreams)
        if options.reuse_answers:  # the offline gate builds its upstreams from these too
            upstreams.update({name: _reusing(cfg) for name, cfg in p.upstreams.items()})
        experiments.append(
            ExperimentConfig(
                name=p.experiment,
                control=ArmConfig(upstream=control),
                candidate=ArmConfig(upstream=candidate),
                stage=Stage.SHADOW,
                mirror_rate=1.0,
                ramp=[0.25, 0.5],
                # probes carry short key answers that the base model wraps in a sentence
                category_scorers={"probe": ["contains"]},
                policy=_policy(p, options),
            )
        )
    # shadow copies wait behind served requests on a busy CPU: give them the upstream's patience
    mirror = MirrorSettings(timeout_seconds=600.0)
    settings = Settings(
        redis=redis,
        upstreams=upstreams,
        proxy=ProxySettings(mirror=mirror, state_refresh_seconds=STATE_REFRESH_S),
        experiments=experiments,
        judge=JudgeSettings(endpoint=options.judge),
        analysis=AnalysisSettings(report_dir=str(options.workdir / "reports")),
    )
    # the web console's (and admin API's) login: a fresh random token each run. Set after
    # validation: one given to ProxySettings above does not survive Settings' validation (the
    # token field is excluded from dumps; tests/demo/test_rollout.py saw the console answer 503)
    settings.proxy.admin_token = SecretStr(admin_token)
    return settings


async def _candidate(
    p: Prepared,
    live: Live,
    settings: Settings,
    client: aioredis.Redis,
    offline: dict[str, object] | None,
    workdir: Path,
) -> CandidateResult:
    """Read one experiment's figures back from Redis and render its HTML report."""
    from analysis.evidence import load_evidence
    from analysis.report import render_html

    config = settings.experiment(p.experiment)
    assert config is not None
    scores = await arm_scores(await read_pairs(client, p.experiment), config.category_scorers)
    figures = category_figures(await read_verdicts(client, p.experiment), scores)
    evidence = await load_evidence(client, p.experiment)
    report = await asyncio.to_thread(
        render_html, config.policy, evidence, live.decisions[-1], workdir / "reports"
    )
    return CandidateResult(
        experiment=p.experiment,
        candidate=p.candidate,
        reused=p.reused,
        train_seconds=p.train_seconds,
        final_loss=p.final_loss,
        decisions=live.decisions,
        figures=figures,
        report=report.resolve(),
        sent=live.sent,
        failed=live.failed,
        feedback=live.feedback,
        policy=config.policy,
        offline=offline,
        source=p.source,
    )


async def _offline(
    prepared: list[Prepared],
    settings: Settings,
    options: DemoOptions,
    console: Console,
    progress: Progress,
) -> dict[str, dict[str, object] | None]:
    """Each candidate's offline gate (``tunegate eval``), sharing one answer cache."""
    if not options.offline:
        return {p.experiment: None for p in prepared}
    from demo.offline import offline_gate

    cache = options.workdir / "offline" / "cache"
    if not all(p.reused for p in prepared):  # answers cached for an older adapter are stale
        shutil.rmtree(cache, ignore_errors=True)
    return {
        p.experiment: await offline_gate(
            p, settings, options.workdir / "offline" / p.experiment, console, progress, cache
        )
        for p in prepared
    }


async def run_demo(
    options: DemoOptions,
    console: Console,
    on_result: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """One complete demo run; raises DemoError (or another TunegateError) when a step fails.

    ``on_result`` sees the result while the stack still runs; with ``keep_open`` the stack then
    stays up until the task is cancelled (Ctrl-C).
    """
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def lap(name: str, watch: Stopwatch) -> None:
        timings[name], cpu[name] = watch.lap()

    total = Stopwatch()
    with demo_progress(console) as progress:
        watch = Stopwatch()
        prepared = await _prepare(options, progress)
        lap("prepare", watch)
        for stage in ("load", "save_base", "train"):
            spent = [p.stages[stage] for p in prepared if stage in p.stages]
            if spent:
                timings[f"prepare.{stage}"] = sum(w for w, _ in spent)
                cpu[f"prepare.{stage}"] = sum(c for _, c in spent)
        async with embedded_redis(options.workdir / "redis") as redis_settings:
            admin_token = secrets.token_urlsafe(18)
            settings = _settings(prepared, options, redis_settings, admin_token)
            assert redis_settings.url is not None
            client = aioredis.Redis.from_url(redis_settings.url.get_secret_value())
            try:
                watch = Stopwatch()
                offline = await _offline(prepared, settings, options, console, progress)
                if options.offline:
                    lap("offline", watch)
                async with proxy_server(settings) as base_url:
                    watch = Stopwatch()
                    lives = await live_rounds(
                        settings,
                        base_url,
                        prepared,
                        client,
                        progress,
                        ab_rounds=options.ab_rounds,
                        users=options.users,
                        concurrency=options.concurrency,
                        refresh_s=STATE_REFRESH_S,
                    )
                    lap("live", watch)
                    watch = Stopwatch()
                    candidates = [
                        await _candidate(
                            p, live, settings, client, offline[p.experiment], options.workdir
                        )
                        for p, live in zip(prepared, lives, strict=True)
                    ]
                    lap("report", watch)
                    lap("total", total)
                    console_url = f"{base_url.removesuffix('/v1')}/console/"
                    result = DemoResult(
                        candidates=candidates,
                        llm_judge=options.judge.model if options.judge else None,
                        timings=timings,
                        cpu_timings=cpu,
                        console_url=console_url if options.keep_open else None,
                        console_token=admin_token if options.keep_open else None,
                        answers=_answer_counts(),
                        reuse_answers=options.reuse_answers,
                    )
                    progress.stop()
                    if on_result is not None:
                        on_result(result)
                    if options.keep_open:
                        await _stay_open(console, base_url, redis_settings)
            finally:
                await client.aclose()
    return result


async def _stay_open(console: Console, base_url: str, redis: RedisSettings) -> None:
    assert redis.url is not None
    console.print(
        f"The stack stays up (--keep-open): proxy {base_url}, redis"
        f" {redis.url.get_secret_value()}. Ctrl-C stops it.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    await asyncio.Event().wait()
