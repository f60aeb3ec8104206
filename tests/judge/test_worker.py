"""JudgeWorker against real Redis and a real HTTP judge double."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bench.servers.judge_double import Step, prefer_slot_a
from cli.settings import Settings
from judge.metrics import JudgeMetrics
from judge.worker import JudgeWorker
from tests.judge.helpers import EXP, arm, make_pair, make_settings
from tunegate import keys
from tunegate.errors import ConfigError
from tunegate.records import Arm, Pair, Verdict, Winner, decode_dead_letter, decode_verdict, encode


async def add(aredis: Any, *pairs: Pair) -> None:
    for pair in pairs:
        await aredis.xadd(keys.pairs(pair.experiment), encode(pair))


async def verdicts(aredis: Any, experiment: str = EXP) -> list[Verdict]:
    return [decode_verdict(f) for _, f in await aredis.xrange(keys.verdicts(experiment))]


async def dead(aredis: Any, experiment: str = EXP) -> list[dict[str, Any]]:
    """The dead letters, decoded by the records codec (a field dict per letter)."""
    entries = await aredis.xrange(keys.dead(experiment))
    return [decode_dead_letter(f).model_dump() for _, f in entries]


async def drain(settings: Settings, aredis: Any, **kwargs: Any) -> JudgeWorker:
    async with JudgeWorker(settings.judge, settings.experiments, aredis, **kwargs) as worker:
        await asyncio.wait_for(worker.run(until_idle=True), 30)
    return worker


async def test_shortcuts_and_programmatic_scorers_without_a_judge(redis_url, aredis):
    settings = make_settings(redis_url)
    same = make_pair("4", "4")
    cand_err = make_pair(arm(status=None, error="timeout"), "4")
    ctrl_err = make_pair("4", arm('{"error": {}}', status=500))
    json_ref = make_pair('{"a": 1, "b": "x"}', '{"a": 2}', reference='{"a": 1, "b": "X"}')
    text_ref = make_pair("The answer is: Paris.", "paris", reference="Paris")
    await add(aredis, same, cand_err, ctrl_err, json_ref, text_ref)
    metrics = JudgeMetrics(CollectorRegistry())
    worker = await drain(settings, aredis, metrics=metrics)

    got = {v.pair_id: v for v in await verdicts(aredis)}
    assert set(got) == {same.id, cand_err.id, ctrl_err.id, json_ref.id, text_ref.id}
    assert (got[same.id].winner, got[same.id].score, got[same.id].reason) == (
        Winner.TIE,
        0.5,
        "identical",
    )
    assert got[same.id].tokens_in == 0 and got[same.id].cost_usd == 0
    assert (got[cand_err.id].winner, got[cand_err.id].reason) == (Winner.CONTROL, "candidate_error")
    assert (got[ctrl_err.id].winner, got[ctrl_err.id].reason) == (Winner.CANDIDATE, "control_error")
    json_v = got[json_ref.id]
    assert (
        json_v.scorer == "json_fields" and json_v.winner is Winner.CANDIDATE and json_v.score == 1.0
    )
    assert json_v.arm_scores is not None
    assert json_v.arm_scores[Arm.CANDIDATE] == 1.0
    assert json_v.arm_scores[Arm.CONTROL] == pytest.approx(0.2)
    text_v = got[text_ref.id]
    assert (text_v.scorer, text_v.winner, text_v.score) == ("normalized", Winner.CONTROL, 0.0)
    for v in got.values():  # analysis needs only the verdict stream
        assert (v.category, v.served_arm, v.user_key_hash) == ("math", Arm.CONTROL, "u1")
    assert worker.stats.acked == 5 and worker.stats.verdicts == 5
    assert metrics.shortcuts.labels(EXP, "identical")._value.get() == 1
    assert metrics.verdicts.labels(EXP, "json_fields", "candidate")._value.get() == 1
    pending = await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP)
    assert pending["pending"] == 0


async def test_pairwise_verdict_with_provenance_both_orders(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.script(Step("A>>B", tokens=(100, 10)), Step("B>A", tokens=(120, 12)))
    settings = make_settings(redis_url, judge_url=judge_url)
    settings.judge.endpoint.input_cost_per_mtok = 1.0  # type: ignore[union-attr]
    pair = make_pair("four", "4 is the answer")
    await add(aredis, pair)
    await drain(settings, aredis)
    [v] = await verdicts(aredis)
    assert v.scorer == "pairwise" and v.reason == "judged" and v.judge_model == "judge-model"
    assert len(judge_double.calls) == 2
    shown = sorted(c["messages"][0]["content"].index("four") for c in judge_double.calls)
    assert len(set(shown)) == 2  # the candidate sat in slot A once and in slot B once
    assert judge_double.calls[0]["response_format"]["type"] == "json_schema"
    # the scripted replies went to whichever order called first; both are candidate-favouring
    # or one each way; either way the stored orders reproduce the score
    scores = [o.candidate_score or 0.0 for o in v.orders]
    assert v.score == pytest.approx(sum(scores) / 2)
    assert {o.order for o in v.orders} == {"candidate_first", "control_first"}
    assert {o.label for o in v.orders} == {"A>>B", "B>A"}
    assert v.tokens_in == 220 and v.tokens_out == 22
    assert v.cost_usd == pytest.approx(220 / 1e6)
    assert v.template_hash and v.judge_version.startswith("judge-model:pairwise_general.v1:")
    assert "scripted analysis" in (v.rationale or "")


async def test_judge_that_always_prefers_slot_a_produces_ties_not_wins(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.policy = prefer_slot_a
    settings = make_settings(redis_url, judge_url=judge_url)
    pairs = [make_pair(f"answer {i}", f"other {i} longer text") for i in range(6)]
    await add(aredis, *pairs)
    metrics = JudgeMetrics(CollectorRegistry())
    await drain(settings, aredis, metrics=metrics)
    got = await verdicts(aredis)
    assert len(got) == 6
    assert all(v.winner is Winner.TIE and v.score == 0.5 and v.inconsistent for v in got)
    assert metrics.swap_consistency.labels(EXP)._value.get() == 0.0
    assert metrics.first_position_share.labels(EXP)._value.get() == 1.0


async def test_retries_429_5xx_then_succeeds(redis_url, aredis, judge_double, judge_url):
    judge_double.script(Step(status=429), Step(status=503), Step("A>B"), Step("A>B"))
    settings = make_settings(redis_url, judge_url=judge_url, max_retries=3)
    metrics = JudgeMetrics(CollectorRegistry())
    await add(aredis, make_pair("x", "y"))
    await drain(settings, aredis, metrics=metrics)
    [v] = await verdicts(aredis)
    assert v.winner is Winner.TIE  # A>B in both orders: position bias, not a win
    assert len(judge_double.calls) == 4
    assert metrics.calls.labels(EXP, "rate_limited")._value.get() == 1
    assert metrics.calls.labels(EXP, "server_error")._value.get() == 1
    assert await dead(aredis) == []


async def test_malformed_output_is_retried_then_dead_lettered_never_a_tie(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.policy = lambda prompt: Step(content="I think both are fine, really.")
    settings = make_settings(redis_url, judge_url=judge_url, max_retries=2)
    metrics = JudgeMetrics(CollectorRegistry())
    pair = make_pair("x", "y")
    await add(aredis, pair)
    await drain(settings, aredis, metrics=metrics)
    assert await verdicts(aredis) == []
    [letter] = await dead(aredis)
    assert letter["reason"] == "parse_failure" and letter["scorer"] == "pairwise"
    assert letter["raw"] == "I think both are fine, really."
    assert orjson.loads(letter["pair"])["id"] == pair.id
    assert metrics.parse_failures.labels(EXP)._value.get() >= 3
    assert metrics.dead_letters.labels(EXP, "parse_failure")._value.get() == 1


async def test_a_judge_that_hangs_then_answers_gives_a_verdict_not_a_dead_letter(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.script(Step(delay=1), Step(delay=1))  # two calls time out: late, not wrong
    judge_double.policy = lambda prompt: Step("A>B")
    settings = make_settings(redis_url, judge_url=judge_url, max_retries=0)
    settings.judge.endpoint.timeout_seconds = 0.2  # type: ignore[union-attr]
    metrics = JudgeMetrics(CollectorRegistry())
    await add(aredis, make_pair("x", "y"))
    started = time.monotonic()
    await drain(settings, aredis, metrics=metrics)
    assert time.monotonic() - started < 5
    assert await dead(aredis) == []
    [v] = await verdicts(aredis)
    assert {o.label for o in v.orders} == {"A>B"}
    assert metrics.calls.labels(EXP, "timeout")._value.get() == 2
    assert metrics.calls.labels(EXP, "ok")._value.get() == 2


async def test_4xx_is_permanent(redis_url, aredis, judge_double, judge_url):
    judge_double.policy = lambda prompt: Step(status=400)
    settings = make_settings(redis_url, judge_url=judge_url, max_retries=3)
    metrics = JudgeMetrics(CollectorRegistry())
    await add(aredis, make_pair("x", "y"))
    await drain(settings, aredis, metrics=metrics)
    [letter] = await dead(aredis)
    assert letter["reason"] == "judge_rejected" and letter["scorer"] == "pairwise"
    # both orders always run to their end (the first 400 no longer cancels its sibling), and
    # neither is retried: exactly one call per order
    assert len(judge_double.calls) == 2 and judge_double.statuses() == [400, 400]
    assert metrics.dead_letters.labels(EXP, "judge_rejected")._value.get() == 1


async def test_one_order_rejected_the_other_answered_is_one_dead_letter(
    redis_url, aredis, judge_double, judge_url
):
    judge_double.script(Step(status=422), Step("A>B", delay=0.3))
    settings = make_settings(redis_url, judge_url=judge_url, max_retries=3)
    await add(aredis, make_pair("x", "y"))
    await drain(settings, aredis)
    assert [d["reason"] for d in await dead(aredis)] == ["judge_rejected"]
    assert await verdicts(aredis) == [] and len(judge_double.calls) == 2


async def test_rate_limit_waits_for_retry_after_and_loses_no_pair(
    redis_url, aredis, judge_double, judge_url
):
    """429 with Retry-After for longer than the old dead-letter point (7.5 s of retries), then
    recovery: two workers judge every pair exactly once, none is dead-lettered, and the calls
    spent waiting are what the Retry-After schedule allows."""
    outage, retry_after, concurrency, n = 8.0, 2.0, 4, 12
    judge_double.policy = lambda prompt: Step("A>B")
    judge_double.outage(outage, retry_after=retry_after)
    settings = make_settings(
        redis_url, judge_url=judge_url, concurrency=concurrency, batch_size=4,
        claim_idle_seconds=1.0,  # far shorter than the outage: leases must keep the pairs
    )  # fmt: skip
    pairs = [make_pair(f"cand {i}", f"ctrl {i}") for i in range(n)]
    await add(aredis, *pairs)
    metrics = JudgeMetrics(CollectorRegistry())
    second = aioredis.Redis.from_url(redis_url)
    limited: list[float] = []
    async with (
        JudgeWorker(settings.judge, settings.experiments, aredis, name="a", metrics=metrics) as a,
        JudgeWorker(settings.judge, settings.experiments, second, name="b") as b,
    ):
        runs = [asyncio.create_task(w.run(until_idle=True)) for w in (a, b)]
        while not all(r.done() for r in runs):
            limited.append(max(a.rate_limited_seconds, b.rate_limited_seconds))
            beat = await aredis.hget(keys.heartbeat("a"), "rate_limited_seconds")
            if beat is not None:
                limited.append(float(beat))
            await asyncio.wait(runs, timeout=0.2)
        stats = [r.result() for r in runs]
    await second.aclose()
    got = await verdicts(aredis)
    assert sorted(v.pair_id for v in got) == sorted(p.id for p in pairs)  # each exactly once
    assert await dead(aredis) == []
    statuses = judge_double.statuses()
    assert statuses.count(200) == 2 * n  # one answered call per order: nothing judged twice
    waits_allowed = math.ceil(outage / retry_after) + 1  # probes, one per Retry-After
    assert statuses.count(429) <= 2 * (concurrency * 2 + waits_allowed)
    assert sum(s.reclaimed for s in stats) == 0  # no pair was taken from a live worker
    assert max(limited) >= outage - retry_after - 1  # how long it was limited was visible
    assert a.rate_limited_seconds == 0 and b.rate_limited_seconds == 0
    assert metrics.calls.labels(EXP, "rate_limited")._value.get() >= 1
    # after the calls in flight when it began, at most one probe per worker per Retry-After
    # (the old loop retried every order after a median 0.45 s, and gave up after 7.5 s)
    first = judge_double.answers[0][0]
    probes = [t for t, status in judge_double.answers if status == 429 and t > first + 0.5]
    assert len(probes) <= 2 * math.ceil(outage / retry_after)


async def test_cache_makes_a_rerun_free(redis_url, aredis, judge_double, judge_url):
    judge_double.policy = lambda prompt: Step("A>B")
    settings = make_settings(redis_url, judge_url=judge_url)
    pair = make_pair("x", "y")
    await add(aredis, pair)
    await drain(settings, aredis)
    assert len(judge_double.calls) == 2
    # the same pair under a new id (a re-run) costs no judge call
    await add(aredis, pair.model_copy(update={"id": "rerun"}))
    metrics = JudgeMetrics(CollectorRegistry())
    await drain(settings, aredis, metrics=metrics)
    assert len(judge_double.calls) == 2
    got = {v.pair_id: v for v in await verdicts(aredis)}
    assert all(o.cached for o in got["rerun"].orders) and got["rerun"].cost_usd == 0
    assert metrics.cache_hits.labels(EXP)._value.get() == 2


async def test_logprobs_give_the_expected_score(redis_url, aredis, judge_double, judge_url):
    import math

    probs = {"A>>B": 0.5, "A>B": 0.5}
    judge_double.policy = lambda prompt: Step(
        "A>>B", logprobs={k: math.log(v) for k, v in probs.items()}
    )
    settings = make_settings(redis_url, judge_url=judge_url)
    settings.judge.endpoint.use_logprobs = True  # type: ignore[union-attr]
    await add(aredis, make_pair("x", "y"))
    await drain(settings, aredis)
    [v] = await verdicts(aredis)
    # slot A expected 0.875 in both orders: candidate .875 then .125, mean .5
    assert sorted(o.candidate_score or 0.0 for o in v.orders) == pytest.approx([0.125, 0.875])
    assert judge_double.calls[0]["logprobs"] is True


async def test_duplicate_delivery_writes_one_verdict(redis_url, aredis):
    settings = make_settings(redis_url)
    pair = make_pair("4", "4")
    await add(aredis, pair, pair)  # the proxy retried the XADD
    await drain(settings, aredis)
    assert len(await verdicts(aredis)) == 1


async def test_reclaims_pending_of_a_dead_consumer(redis_url, aredis):
    settings = make_settings(redis_url, claim_idle_seconds=0.2)
    async with JudgeWorker(settings.judge, settings.experiments, aredis, name="live") as worker:
        await add(aredis, make_pair("a", "a"), make_pair("b", "b"))
        # a consumer takes both entries and dies without acknowledging
        taken = await aredis.xreadgroup(keys.JUDGE_GROUP, "ghost", {keys.pairs(EXP): ">"}, count=10)
        assert len(taken[0][1]) == 2
        stats = await asyncio.wait_for(worker.run(until_idle=True), 20)
    assert stats.reclaimed == 2 and stats.acked == 2
    assert len(await verdicts(aredis)) == 2


async def test_bad_records_are_dead_lettered_and_unscorable_pairs_accounted(redis_url, aredis):
    settings = make_settings(redis_url)
    await aredis.xadd(keys.pairs(EXP), {"v": "1", "json": "{not json"})
    unscorable = make_pair("x", "y")  # no reference and no judge configured
    unpaired = make_pair("x", "y", reference="x")
    unpaired.candidate, unpaired.mirror_skipped = None, "mirror_rate"
    await add(aredis, unscorable, unpaired)
    await drain(settings, aredis)
    assert [d["reason"] for d in await dead(aredis)] == ["bad_record"]
    got = {v.pair_id: v for v in await verdicts(aredis)}
    assert {v.reason for v in got.values()} == {"no_scorer", "unpaired"}
    assert all(v.winner is None and v.score is None for v in got.values())


async def test_heartbeat_and_unknown_scorer(redis_url, aredis):
    settings = make_settings(redis_url)
    async with JudgeWorker(settings.judge, settings.experiments, aredis, name="w1"):
        deadline = time.monotonic() + 5
        while not await aredis.exists(keys.heartbeat("w1")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert await aredis.hget(keys.heartbeat("w1"), "verdicts") == b"0"
    assert not await aredis.exists(keys.heartbeat("w1"))
    pairwise_only = make_settings(redis_url, scorers=["pairwise"])
    with pytest.raises(ConfigError, match="pairwise"):
        async with JudgeWorker(pairwise_only.judge, pairwise_only.experiments, aredis):
            pass


async def test_two_experiments_and_explicit_scorers(redis_url, aredis):
    settings = make_settings(
        redis_url, experiments=("e1", "e2"), scorers=["exact", "rouge_l", "regex"]
    )
    p1 = make_pair("the cat sat", "a dog ran", reference="the cat sat", experiment="e1")
    p2 = make_pair("x", "y", experiment="e2")  # no reference: nothing applies
    await add(aredis, p1, p2)
    await drain(settings, aredis)
    got = {v.scorer: v for v in await verdicts(aredis, "e1")}
    assert set(got) == {"exact", "rouge_l", "regex"}
    assert all(v.winner is Winner.CANDIDATE for v in got.values())
    assert await dead(aredis, "e2") == []
    assert [v.reason for v in await verdicts(aredis, "e2")] == ["no_scorer"]


async def test_stop_finishes_the_current_batch(redis_url, aredis, judge_double, judge_url):
    judge_double.policy = lambda prompt: Step("A>B", delay=0.2)
    settings = make_settings(redis_url, judge_url=judge_url, batch_size=4)
    await add(aredis, *[make_pair(f"x{i}", f"y{i}") for i in range(8)])
    async with JudgeWorker(settings.judge, settings.experiments, aredis) as worker:
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 10
        while not judge_double.calls:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        worker.stop()
        stats = await asyncio.wait_for(task, 10)
    assert stats.acked == 4 and len(await verdicts(aredis)) == 4
    pending = await aredis.xpending(keys.pairs(EXP), keys.JUDGE_GROUP)
    assert pending["pending"] == 0  # nothing left half-done; the other 4 were never read


class BoomScorer:
    """A scorer with a bug: the worker must dead-letter the pair and keep going."""

    name = "boom"

    def applies(self, ctx: Any) -> bool:
        return True

    def judge_version(self, ctx: Any) -> str:
        return "boom/1"

    async def score(self, ctx: Any) -> Any:
        raise RuntimeError("scorer bug")


async def test_a_scorer_bug_dead_letters_the_pair_without_a_crash_loop(redis_url, aredis):
    from judge.scorers import build_registry

    registry = {**build_registry(), "boom": BoomScorer()}
    settings = make_settings(redis_url, scorers=["boom"])
    await add(aredis, make_pair("x", "y"), make_pair("z", "z"))
    worker = await drain(settings, aredis, registry=registry)
    letters = await dead(aredis)
    assert [d["reason"] for d in letters] == ["internal_error"]  # the identical pair got its tie
    assert "scorer bug" in letters[0]["error"] and worker.stats.internal_errors == 1
    assert [v.reason for v in await verdicts(aredis)] == ["identical"]


async def test_worker_survives_a_redis_restart(redis_server, redis_url, aredis):
    settings = make_settings(redis_url)

    async def until(predicate: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not await predicate():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    async with JudgeWorker(settings.judge, settings.experiments, aredis) as worker:
        task = asyncio.create_task(worker.run())
        await add(aredis, make_pair("a", "a"))
        await until(lambda: _has(aredis, 1), "first verdict")
        await asyncio.to_thread(redis_server.stop)

        async def failed() -> bool:
            return worker.stats.store_errors > 0

        await until(failed, "the worker to notice the outage")
        await asyncio.to_thread(redis_server.start)
        fresh = aioredis.Redis.from_url(redis_url)  # the test's own pooled connection died too
        await add(fresh, make_pair("b", "b"))
        await until(lambda: _has(fresh, 2), "a verdict after the restart")
        await fresh.aclose()
        worker.stop()
        await asyncio.wait_for(task, 10)


async def _has(aredis: Any, n: int) -> bool:
    return bool(await aredis.xlen(keys.verdicts(EXP)) >= n)


async def test_category_scorers_replace_the_default_for_their_category(redis_url, aredis):
    settings = make_settings(redis_url)
    settings.experiments[0].category_scorers = {"probe": ["contains"]}
    probe = make_pair("The answer is 4.", "It is 14.", reference="4", category="probe")
    other = make_pair("The answer is 4.", "It is 14.", reference="4", category="math")
    await add(aredis, probe, other)
    await drain(settings, aredis)
    got = {v.pair_id: v for v in await verdicts(aredis)}
    assert got[probe.id].scorer == "contains" and got[probe.id].winner is Winner.CANDIDATE
    assert got[other.id].scorer == "normalized" and got[other.id].winner is Winner.TIE
