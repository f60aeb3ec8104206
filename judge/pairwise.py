"""Pairwise LLM judge: both orders in independent calls, waits, retries, cache, reconciliation.

Order ``candidate_first`` shows the candidate in slot A, ``control_first`` the control. Each
order's label maps to slot A's score (1, .75, .5, .25, 0; with logprobs, the expected score),
which is turned into the candidate's score; the pair's score is the mean of the two orders and
the pair is inconsistent when the orders point different ways. A judge that always prefers slot
A therefore produces ties, not wins.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from judge.budget import Budget
from judge.cache import VerdictCache, cache_digest
from judge.clients import JudgeClient, JudgeReply
from judge.config import JudgeEndpoint, JudgeSettings
from judge.errors import ParseFailure, RetryableJudgeError
from judge.parse import SLOT_A_SCORE, expected_score, parse_verdict
from judge.prompts import JudgeInput, Template, choose_template, render
from judge.ratelimit import RateLimitGate
from tunegate.records import OrderVerdict

__all__ = [
    "CallObserver",
    "Comparison",
    "PairJudge",
    "PairwiseJudge",
    "candidate_score",
    "direction",
    "reconcile",
]

Order = Literal["candidate_first", "control_first"]


class CallObserver(Protocol):
    """Told the outcome of every judge call attempt (ok, cached, rate_limited, parse_failure…)."""

    def __call__(self, experiment: str, outcome: str) -> None: ...


@dataclass(slots=True)
class Comparison:
    """The judgement of one pair in both orders."""

    orders: list[OrderVerdict]
    score: float  # candidate's score in [0, 1]
    inconsistent: bool
    judge_model: str
    template: Template | None = None
    rationale: str = ""
    cost_usd: float = 0.0
    input_truncated: bool = False
    latency_s: float = 0.0
    tokens_in: int = field(init=False, default=0)
    tokens_out: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.tokens_in = sum(o.tokens_in for o in self.orders if not o.cached)
        self.tokens_out = sum(o.tokens_out for o in self.orders if not o.cached)

    @property
    def judge_version(self) -> str:
        template = f":{self.template.id}:{self.template.hash}" if self.template else ""
        return f"{self.judge_model}{template}"


class PairJudge(Protocol):
    """Anything that compares two responses in both orders (an LLM judge, a baseline)."""

    @property
    def model(self) -> str: ...

    async def compare(
        self, experiment: str, judge_input: JudgeInput, candidate: str, control: str
    ) -> Comparison: ...


def candidate_score(order: Order, slot_a_score: float) -> float:
    return slot_a_score if order == "candidate_first" else 1.0 - slot_a_score


def direction(score: float) -> int:
    """+1 candidate better, -1 control better, 0 tie."""
    return (score > 0.5) - (score < 0.5)


def reconcile(first: float, second: float) -> tuple[float, bool]:
    """Mean of the two orders' candidate scores, and whether the orders disagree."""
    return (first + second) / 2, direction(first) != direction(second)


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit] + " […truncated]", True)


def _capped_input(judge_input: JudgeInput, limit: int) -> tuple[JudgeInput, bool]:
    """The question, reference and rubric cut at ``limit``; of earlier turns the last ``limit``."""
    question, cut_q = _truncate(judge_input.question, limit)
    reference, cut_r = _truncate(judge_input.reference or "", limit)
    rubric, cut_b = _truncate(judge_input.rubric or "", limit)
    conversation = judge_input.conversation or ""
    cut_c = len(conversation) > limit
    if cut_c:
        conversation = "[…truncated] " + conversation[-limit:]
    capped = replace(
        judge_input,
        question=question,
        conversation=conversation if judge_input.conversation is not None else None,
        reference=reference if judge_input.reference is not None else None,
        rubric=rubric if judge_input.rubric is not None else None,
    )
    return capped, cut_q or cut_r or cut_b or cut_c


class PairwiseJudge:
    """An LLM judge client plus its rate-limit gate, retries of wrong answers, cache and budget."""

    def __init__(
        self,
        client: JudgeClient,
        settings: JudgeSettings,
        *,
        cache: VerdictCache | None = None,
        budget: Budget | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.endpoint: JudgeEndpoint | None = settings.endpoint
        self._cache = cache
        self._budget = budget
        self._observer = observer
        self.gate = RateLimitGate(
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
            retry_after_max_seconds=settings.retry_after_max_seconds,
        )

    @property
    def model(self) -> str:
        return self.client.model

    def version_for(self, judge_input: JudgeInput) -> str:
        template = choose_template(judge_input)
        return f"{self.model}:{template.id}:{template.hash}"

    def _observe(self, experiment: str, outcome: str) -> None:
        if self._observer is not None:
            self._observer(experiment, outcome)

    async def compare(
        self, experiment: str, judge_input: JudgeInput, candidate: str, control: str
    ) -> Comparison:
        limit = self.settings.max_response_chars
        cand, cut_c = _truncate(candidate, limit)
        ctrl, cut_k = _truncate(control, limit)
        judge_input, cut_i = _capped_input(judge_input, limit)
        template = choose_template(judge_input)
        started = time.monotonic()
        # Both orders run to their end even when one fails for good, so that what a pair costs
        # does not depend on which order answered first; then the first failure fails the pair.
        results = await asyncio.gather(
            self._order(experiment, template, judge_input, "candidate_first", cand, ctrl),
            self._order(experiment, template, judge_input, "control_first", ctrl, cand),
            return_exceptions=True,
        )
        orders: list[OrderVerdict] = []
        for outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome
            orders.append(outcome)
        score, inconsistent = reconcile(
            orders[0].candidate_score or 0.0, orders[1].candidate_score or 0.0
        )
        rationale = "\n".join(f"[{o.order}] {_analysis(o.raw)}" for o in orders)
        result = Comparison(
            orders=orders,
            score=score,
            inconsistent=inconsistent,
            judge_model=self.model,
            template=template,
            rationale=rationale,
            input_truncated=cut_c or cut_k or cut_i,
            latency_s=time.monotonic() - started,
        )
        result.cost_usd = self._cost(result.tokens_in, result.tokens_out)
        return result

    def _cost(self, tokens_in: int, tokens_out: int) -> float:
        if self.endpoint is None:
            return 0.0
        return (
            tokens_in * self.endpoint.input_cost_per_mtok
            + tokens_out * self.endpoint.output_cost_per_mtok
        ) / 1e6

    async def _order(
        self,
        experiment: str,
        template: Template,
        judge_input: JudgeInput,
        order: Order,
        slot_a: str,
        slot_b: str,
    ) -> OrderVerdict:
        digest = cache_digest(
            self.model, template.hash, judge_input.question, judge_input.conversation or "",
            judge_input.reference or "", judge_input.rubric or "", slot_a, slot_b, order,
        )  # fmt: skip
        if self._cache is not None:
            hit = await self._cache.get(experiment, digest)
            if hit is not None:
                self._observe(experiment, "cached")
                return _order_verdict(order, hit, 0.0, cached=True)
        messages = render(template, judge_input, slot_a, slot_b)
        reply, latency = await self._call_with_retries(experiment, messages)
        verdict = _order_verdict(order, reply, latency, cached=False)
        if self._cache is not None:
            await self._cache.put(experiment, digest, reply)
        return verdict

    async def _call_with_retries(
        self, experiment: str, messages: list[dict[str, str]]
    ) -> tuple[JudgeReply, float]:
        """An answer with a verdict in it. "Later" (429, 5xx, timeouts) waits at the gate for as
        long as it takes; a wrong answer is asked again ``max_retries`` times, then fails."""
        for attempt in range(self.settings.max_retries + 1):
            try:
                reply, latency = await self.gate.run(lambda: self._attempt(experiment, messages))
                _slot_a_score(reply)  # parse now, so that a bad answer is retried
            except ParseFailure as exc:
                self._observe(experiment, exc.reason)
                if attempt == self.settings.max_retries:
                    raise
                continue
            self._observe(experiment, "ok")
            return reply, latency
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(
        self, experiment: str, messages: list[dict[str, str]]
    ) -> tuple[JudgeReply, float]:
        reserved = await self._budget.acquire(experiment) if self._budget is not None else None
        started = time.monotonic()
        try:
            reply = await self.client.complete(messages)
        except RetryableJudgeError as exc:
            self._observe(experiment, exc.reason)
            if self._budget is not None and reserved is not None:  # no answer: nothing spent
                await self._budget.record(experiment, 0, 0.0, reserved)
            raise
        if self._budget is not None and reserved is not None:
            await self._budget.record(
                experiment,
                reply.tokens_in + reply.tokens_out,
                self._cost(reply.tokens_in, reply.tokens_out),
                reserved,
            )
        return reply, time.monotonic() - started


def _slot_a_score(reply: JudgeReply) -> tuple[str, float]:
    """The label and slot A's score; the expected score when label log-probabilities came back."""
    expected = expected_score(reply.label_logprobs)
    try:
        label = parse_verdict(reply.text).label
    except ParseFailure:
        if expected is None:
            raise
        label = max(
            (lbl for lbl in reply.label_logprobs if lbl in SLOT_A_SCORE),
            key=lambda lbl: reply.label_logprobs[lbl],
        )
    return label, SLOT_A_SCORE[label] if expected is None else expected


def _analysis(raw: str) -> str:
    try:
        return parse_verdict(raw).analysis
    except ParseFailure:
        return ""


def _order_verdict(
    order: Order, reply: JudgeReply, latency: float, *, cached: bool
) -> OrderVerdict:
    label, slot_a = _slot_a_score(reply)
    return OrderVerdict(
        order=order,
        raw=reply.text,
        label=label,
        candidate_score=candidate_score(order, slot_a),
        cached=cached,
        tokens_in=reply.tokens_in,
        tokens_out=reply.tokens_out,
        latency_s=latency,
    )
