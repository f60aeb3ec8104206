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
from demo.traffic import Sent, TrafficItem, send_traffic
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
    items: list[TrafficItem],
    label: str,
    concurrency: int,
    progress: Progress,
) -> list[Sent]:
    """Send ``items`` and wait until their pairs (shadow copies included) are logged."""
    task = progress.add_task(f"{prepared.experiment}: {label}", total=len(items), note="")
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
    return served


async def _round(
    base_url: str,
    prepared: Prepared,
    live: Live,
    client: aioredis.Redis,
    population: Population | None,
    round_index: int,
    concurrency: int,
    progress: Progress,
) -> None:
    """One round of an experiment's traffic: the shadow stage's items (round 0), else the
    round's fresh items, mirrored; in the A/B stage, from the users, then every other user
    asks again one question asked before. The repeats go after the fresh items' pairs are in,
    so both arms answer them from the memo with no decoding beside them: their latencies
    compare the arms, not what else ran at that moment."""
    if population is None:  # shadow: its items, or an undecided candidate's round, mirrored
        items = prepared.items if round_index == 0 else prepared.round_items(round_index)
        label = "shadow" if round_index == 0 else f"shadow round {round_index}"
        await _send(base_url, prepared, live, client, items, label, concurrency, progress)
        return
    fresh = prepared.round_items(round_index)
    asked = prepared.items + [i for r in range(1, round_index) for i in prepared.round_items(r)]
    new, again = population.round_traffic(fresh, asked, round_index)
    served = []
    for items, label in ((new, "new questions"), (again, "repeated questions")):
        if items:
            label = f"A/B round {round_index}: {label}"
            served += await _send(
                base_url, prepared, live, client, items, label, concurrency, progress
            )
    live.feedback += await population.feedback(base_url, prepared.experiment, served)


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
        # one experiment after the other: its requests then wait for no other experiment's
        # decoding (the arms share one model on two cores), so latency compares the arms
        for p, live in active:
            who = population if live.stage is Stage.AB else None
            await _round(base_url, p, live, client, who, round_index, concurrency, progress)
        await _judge(settings, client, progress)
        for p, live in active:
            live.decisions.append(await controller.step(p.experiment, apply=True))
        # the proxy reads the state the controller wrote on its next refresh
        await asyncio.sleep(2 * refresh_s)
    return lives
