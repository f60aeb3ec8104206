"""Pairs and verdicts for the console tests, written to real Redis with the records codec.

Pair i is in category "task" (even i) or "probe" (odd i); every 10th control answer failed with
a timeout; the candidate's answer is the longer one, and the pairwise "judge" prefers it, except
on every 4th pair, where the two orders disagree (a tie). Pair 3's answers are JSON objects and
pair 5's candidate made a tool call; the candidate's answer to pair 6, 9, 12, ... was streamed.
"""

from __future__ import annotations

import orjson
import redis

from tunegate import keys
from tunegate.records import (
    Arm,
    ArmResult,
    Endpoint,
    OrderVerdict,
    Pair,
    Verdict,
    Winner,
    encode,
)

START = 1_800_000_000.0


def _chat(content: str, tool_calls: list[dict[str, object]] | None = None) -> str:
    message: dict[str, object] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return orjson.dumps({"choices": [{"message": message, "finish_reason": "stop"}]}).decode()


def _sse(content: str) -> str:
    """The event stream a streamed chat answer sends: the text in two deltas, then [DONE]."""
    half = len(content) // 2
    events = [
        {"choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}
        for part in (content[:half], content[half:])
    ]
    return "".join(f"data: {orjson.dumps(e).decode()}\n\n" for e in events) + "data: [DONE]\n\n"


def make_pair(experiment: str, i: int) -> Pair:
    control_text, candidate_text = f"short answer {i}", f"a much longer, careful answer {i} " * 3
    if i == 3:
        control_text = orjson.dumps({"city": "Paris", "zip": "75001"}).decode()
        candidate_text = orjson.dumps({"city": "Paris", "zip": "75002"}).decode()
    calls: list[dict[str, object]] | None = None
    if i == 5:
        calls = [{"id": "c1", "type": "function",
                  "function": {"name": "lookup", "arguments": "{\"q\": \"weather\"}"}}]  # fmt: skip
    failed = i % 10 == 0
    streamed = i % 3 == 0 and i != 3 and calls is None
    return Pair(
        id=f"p{i:05d}",
        experiment=experiment,
        time=START + i,
        endpoint=Endpoint.CHAT,
        request=orjson.dumps(
            {"model": experiment, "messages": [{"role": "user", "content": f"question {i}?"}]}
        ).decode(),
        served_arm=Arm.CONTROL,
        control=ArmResult(
            upstream="control",
            model="base",
            status=None if failed else 200,
            error="timeout" if failed else None,
            body="" if failed else _chat(control_text),
            latency_s=0.2,
        ),
        candidate=ArmResult(
            upstream="candidate",
            model="tuned",
            status=200,
            body=_sse(candidate_text) if streamed else _chat(candidate_text, calls),
            latency_s=0.3,
            stream=streamed,
            ttft_s=0.05,
        ),
        category="task" if i % 2 == 0 else "probe",
    )


def make_verdict(pair: Pair, i: int) -> Verdict:
    disagree = i % 4 == 0
    first = OrderVerdict(order="candidate_first", raw="A is better. [[A>B]]", label="A>B",
                         candidate_score=1.0)  # fmt: skip
    second = OrderVerdict(
        order="control_first",
        raw="A is better. [[A>B]]" if disagree else "B is better. [[B>A]]",
        label="A>B" if disagree else "B>A",
        candidate_score=0.0 if disagree else 1.0,
    )
    return Verdict(
        pair_id=pair.id,
        experiment=pair.experiment,
        scorer="pairwise",
        judge_version="judge-v1",
        time=pair.time + 0.5,
        winner=Winner.TIE if disagree else Winner.CANDIDATE,
        score=0.5 if disagree else 1.0,
        category=pair.category,
        reason="judged",
        orders=[first, second],
        inconsistent=disagree,
        rationale=f"[candidate_first] the longer answer {i} is more complete",
    )


def seed(redis_url: str, experiment: str, n: int) -> list[Pair]:
    """Write ``n`` pairs and their verdicts; stream ids are the pairs' times in ms."""
    client = redis.Redis.from_url(redis_url)
    pairs = [make_pair(experiment, i) for i in range(n)]
    try:
        pipe = client.pipeline(transaction=False)
        for i, pair in enumerate(pairs):
            ms = int(pair.time * 1000)
            pipe.xadd(keys.pairs(experiment), encode(pair), id=f"{ms}-0")  # type: ignore[arg-type]  # redis-py's field type is invariant
            verdict = make_verdict(pair, i)
            pipe.xadd(keys.verdicts(experiment), encode(verdict), id=f"{ms + 500}-0")  # type: ignore[arg-type]  # as above
        pipe.execute()
    finally:
        client.close()
    return pairs
