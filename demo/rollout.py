"""The demo's live path: shadow every candidate, then take the good one through A/B and the ramp.

One proxy serves every experiment. Round 0 is the shadow stage (100 % mirrored, no users); after
each round a judge worker drains the pairs in burst mode and the rollout controller decides and
applies (``tunegate decide --apply``). While a candidate is in the A/B stage, the rounds go on:
it gets held-out traffic the earlier rounds did not send, from sticky simulated users who post
feedback, until it is promoted, rolled back, or the rounds run out; a candidate still undecided
in shadow gets each round's fresh items mirrored (no users), as production traffic would keep
coming. Every decision is kept, with its reasons.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from rich.progress import Progress

from cli.settings import Settings
from demo.errors import DemoError
from demo.generative import Prepared
from demo.stack import wait_for_pairs
from demo.traffic import Sent, send_traffic
from demo.users import Population
from tunegate import keys
from tunegate.records import Decision, Stage
from tunegate.redis import store_errors

__all__ = ["JUDGE_TIMEOUT_S", "Live", "live_rounds"]

#: Programmatic scorers take milliseconds a pair; an LLM judge seconds. Beyond this, give up.
JUDGE_TIMEOUT_S = 900.0

_OPEN = (Stage.SHADOW, Stage.AB)


@dataclass
class Live:
    """What one experiment went through on the live path."""

    experiment: str
    decisions: list[Decision] = field(default_factory=list)
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    feedback: int = 0

    @property
    def stage(self) -> Stage:
        return self.decisions[-1].stage_after if self.decisions else Stage.SHADOW


async def _send(
    base_url: str,
    prepared: Prepared,
    live: Live,
    client: aioredis.Redis,
    population: Population | None,
    round_index: int,
    concurrency: int,
    progress: Progress,
    repeats: int = 0,
) -> list[Sent]:
    # each later round's own items: its pairs are new evidence
    items = prepared.items if round_index == 0 else prepared.round_items(round_index)
    stage = "shadow" if round_index == 0 else f"shadow round {round_index}"
    if population is not None:
        asked = prepared.items + [i for r in range(1, round_index) for i in prepared.round_items(r)]
        items = population.assign(items, round_index) + population.repeats(asked, repeats)
        stage = f"A/B round {round_index}"
    task = progress.add_task(f"{prepared.experiment}: {stage}", total=len(items), note="")
    with store_errors("count pairs"):
        before = int(await client.xlen(keys.pairs(prepared.experiment)))
    sent = await send_traffic(
        base_url,
        prepared.experiment,
        items,
        concurrency=concurrency,
        max_tokens=prepared.max_tokens,
        on_sent=lambda _: progress.advance(task),
    )
    served = [s for s in sent if s.pair_id is not None]
    live.sent += len(served)
    live.failed += [s.error or "no pair id" for s in sent if s.pair_id is None]
    if not served:
        raise DemoError(f"no request got through the proxy: {live.failed[-1]}")
    await wait_for_pairs(client, prepared.experiment, before + len(served), 600.0)
    if population is not None:
        live.feedback += await population.feedback(base_url, prepared.experiment, served)
    return sent


async def _judge(settings: Settings, client: aioredis.Redis, progress: Progress) -> None:
    from judge.worker import JudgeWorker

    task = progress.add_task("judge pairs", total=None, note="")
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
    progress.update(task, total=None, note=f"{stats.read} pairs, {stats.verdicts} verdicts")


async def live_rounds(
    settings: Settings,
    base_url: str,
    prepared: list[Prepared],
    client: aioredis.Redis,
    progress: Progress,
    *,
    ab_rounds: int,
    users: int,
    concurrency: int,
    refresh_s: float,
    repeats: int = 0,
) -> list[Live]:
    """Shadow every experiment, then further rounds while one is in the A/B stage."""
    from analysis.controller import Controller

    controller = Controller(settings.experiments, client, retention=settings.retention)
    lives = [Live(p.experiment) for p in prepared]
    population = Population(users)
    for round_index in range(ab_rounds + 1):
        # an undecided candidate stays in shadow and gets the round's items mirrored
        active = [(p, live) for p, live in zip(prepared, lives, strict=True) if live.stage in _OPEN]
        if not active or (round_index and all(live.stage is Stage.SHADOW for _, live in active)):
            break
        who_sends = [population if live.stage is Stage.AB else None for _, live in active]
        await asyncio.gather(
            *(
                _send(base_url, p, live, client, who, round_index, concurrency, progress, repeats)
                for (p, live), who in zip(active, who_sends, strict=True)
            )
        )
        await _judge(settings, client, progress)
        for p, live in active:
            live.decisions.append(await controller.step(p.experiment, apply=True))
        # the proxy reads the state the controller wrote on its next refresh
        await asyncio.sleep(2 * refresh_s)
    return lives
