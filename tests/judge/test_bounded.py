"""No pair can stall a worker: a 20,000-token answer through every scorer, a hostile pattern."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import orjson
import pytest

from bench.servers.judge_double import Step
from judge.scorers import build_registry
from judge.scorers.base import ScoreContext
from judge.worker import JudgeWorker
from tests.judge.helpers import make_pair, make_settings, retrieval_pair
from tests.judge.test_scorers import hashing_embedder
from tests.judge.test_worker import add, dead, verdicts
from tunegate import keys
from tunegate.records import Arm

EVERY_SCORER = [
    "exact", "normalized", "contains", "json_fields", "regex", "rouge_l", "embedding_cosine",
    "retrieval", "pairwise",
]  # fmt: skip


def long_text(tokens: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(f"w{rng.randrange(400)}" for _ in range(tokens))


async def test_20000_token_answers_through_every_scorer_keep_the_heartbeat_fresh(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.policy = lambda prompt: Step("A>B")
    settings = make_settings(redis_url, judge_url=judge_url, scorers=EVERY_SCORER)
    period = settings.judge.heartbeat_seconds
    reference = orjson.dumps({"answer": long_text(20_000, 3)}).decode()
    text_pair = make_pair(long_text(20_000, 1), long_text(20_000, 2), reference=reference)
    pattern_pair = make_pair(long_text(20_000, 4), long_text(20_000, 5), reference=r"\bw7\b.*w9$")
    vectors = [[random.Random(i).random() for _ in range(64)] for i in range(2_001)]
    embed_pair = retrieval_pair(vectors, vectors[::-1], relevant=7)
    await add(aredis, text_pair, pattern_pair, embed_pair)
    beats: list[float] = []
    async with JudgeWorker(
        settings.judge, settings.experiments, aredis, name="w", embed=hashing_embedder
    ) as worker:
        run = asyncio.create_task(worker.run(until_idle=True))
        while not run.done():
            beat = await aredis.hget(keys.heartbeat("w"), "time")
            if beat is not None and float(beat) not in beats:
                beats.append(float(beat))
            await asyncio.wait([run], timeout=period / 5)
        await run
        beats.append(time.time())
    assert await dead(aredis) == []
    got = {(v.pair_id, v.scorer): v for v in await verdicts(aredis)}
    text_scorers = set(EVERY_SCORER) - {"retrieval", "regex"}  # a JSON reference is no pattern
    assert {s for p, s in got if p == text_pair.id} == text_scorers
    assert {s for p, s in got if p == pattern_pair.id} == {*text_scorers, "regex"} - {"json_fields"}
    assert {s for p, s in got if p == embed_pair.id} == {"retrieval"}
    assert got[(text_pair.id, "pairwise")].input_truncated  # the LLM judge saw a capped answer
    assert 0 < (got[(text_pair.id, "rouge_l")].arm_scores or {})[Arm.CANDIDATE] < 1
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert len(beats) >= 2 and max(gaps) < 3 * period, gaps  # `tunegate judge --check` stays 0


async def test_every_scorer_sees_capped_input():
    settings = make_settings("redis://127.0.0.1:1/0")
    pair = make_pair("x" * 5_000, "y", reference="z" * 5_000)
    ctx = ScoreContext.of(pair, max_chars=1_000)
    assert len(ctx.text(ctx.pair.served_arm)) <= 1_000  # the control "y"
    assert len(ctx.reference or "") == 1_000 and ctx.truncated
    candidate = ctx.parsed(Arm.CANDIDATE)
    alone = ScoreContext(pair, candidate, candidate, max_chars=1_000)  # built directly (demo)
    assert alone.text(Arm.CONTROL) == "x" * 1_000 and alone.truncated
    assert settings.judge.scorer_max_chars >= 100_000  # 20,000 tokens of text fit by default


async def test_a_catastrophic_pattern_is_cut_off_and_dead_lettered(redis_url, aredis):
    settings = make_settings(redis_url, scorers=["regex"], regex_timeout_seconds=0.2)
    pair = make_pair("a" * 40 + "!", "b", reference=r"(a|aa)+$")  # exponential backtracking
    await add(aredis, pair)
    started = time.monotonic()
    async with JudgeWorker(settings.judge, settings.experiments, aredis) as worker:
        await asyncio.wait_for(worker.run(until_idle=True), 20)
    assert time.monotonic() - started < 10
    [letter] = await dead(aredis)
    assert (letter["reason"], letter["scorer"]) == ("scorer_timeout", "regex")
    assert await verdicts(aredis) == []


def test_registry_regex_timeout_is_configurable():
    assert build_registry(regex_timeout_seconds=0.3)["regex"].timeout_seconds == 0.3  # type: ignore[attr-defined]


@pytest.mark.parametrize("tokens", [1_500, 20_000])
def test_rouge_l_of_long_answers_is_fast(tokens):
    from judge.scorers.rouge import rouge_l

    a, b = long_text(tokens, 1), long_text(tokens, 2)
    started = time.perf_counter()
    score = rouge_l(a, b)
    assert 0 < score < 1 and time.perf_counter() - started < 2.0
