"""The in-process transformers judge with a tiny random-weight model and a tokenizer built in code.

Its greedy output is garbage: it must end as retries and a dead letter, never a tie. With
logprobs the five labels are scored and the expected score is used.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Any

import pytest

from judge.clients.local import LocalJudgeClient
from judge.config import JudgeEndpoint, JudgeSettings
from judge.errors import ParseFailure
from judge.pairwise import PairwiseJudge
from judge.parse import LABELS
from judge.prompts import JudgeInput
from judge.worker import JudgeWorker
from tests.judge.helpers import EXP, make_pair, make_settings
from tunegate import keys
from tunegate.records import decode_dead_letter, decode_verdict, encode

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# no "verdict", braces or quotes: greedy garbage can never spell a label the parser accepts
WORDS = ["A", "B", ">", ">>", "=", "better", "answer", "response", "is", "the", "user", ":"]


def tiny_model() -> tuple[Any, Any]:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[EOS]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # untyped library
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant :{% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=0, eos_token_id=2, bos_token_id=2,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval(), tokenizer  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return tiny_model()


def endpoint(use_logprobs: bool) -> JudgeEndpoint:
    return JudgeEndpoint(model="tiny-random", local_path="in-memory", max_tokens=6,
                         use_logprobs=use_logprobs)  # fmt: skip


async def test_garbage_output_is_retried_then_fails_never_a_tie(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    settings = JudgeSettings(max_retries=1, backoff_base_seconds=0)
    calls = []
    client = LocalJudgeClient(endpoint(False), model=model, tokenizer=tokenizer)
    judge = PairwiseJudge(client, settings, observer=lambda exp, outcome: calls.append(outcome))
    reply = await client.complete([{"role": "user", "content": "the answer is A"}])
    assert reply.tokens_out > 0 and reply.tokens_in > 0
    with pytest.raises(ParseFailure):
        await judge.compare(EXP, JudgeInput("q"), "answer A", "answer B")
    assert calls.count("parse_failure") >= 2 and "ok" not in calls


async def test_worker_dead_letters_the_local_judges_garbage(model_and_tokenizer, redis_url, aredis):
    model, tokenizer = model_and_tokenizer
    settings = make_settings(redis_url, max_retries=0)
    settings.judge.endpoint = endpoint(False)
    client = LocalJudgeClient(settings.judge.endpoint, model=model, tokenizer=tokenizer)
    await aredis.xadd(keys.pairs(EXP), encode(make_pair("answer A", "answer B")))
    async with JudgeWorker(settings.judge, settings.experiments, aredis, client=client) as worker:
        await asyncio.wait_for(worker.run(until_idle=True), 30)
    assert await aredis.xlen(keys.verdicts(EXP)) == 0
    [(_, letter)] = await aredis.xrange(keys.dead(EXP))
    assert decode_dead_letter(letter).reason == "parse_failure"


async def test_logprob_scoring_of_the_five_labels(model_and_tokenizer, redis_url, aredis):
    model, tokenizer = model_and_tokenizer
    client = LocalJudgeClient(endpoint(True), model=model, tokenizer=tokenizer)
    reply = await client.complete([{"role": "user", "content": "A or B"}])
    assert set(reply.label_logprobs) == set(LABELS)
    assert all(lp < 0 and math.isfinite(lp) for lp in reply.label_logprobs.values())
    settings = make_settings(redis_url)
    settings.judge.endpoint = endpoint(True)
    await aredis.xadd(keys.pairs(EXP), encode(make_pair("answer A", "answer B")))
    async with JudgeWorker(settings.judge, settings.experiments, aredis, client=client) as worker:
        await asyncio.wait_for(worker.run(until_idle=True), 30)
    [(_, fields)] = await aredis.xrange(keys.verdicts(EXP))
    verdict = decode_verdict(fields)
    assert verdict.judge_model == "tiny-random" and len(verdict.orders) == 2
    assert all(0 < (o.candidate_score or 0) < 1 for o in verdict.orders)
    assert verdict.score == pytest.approx(sum(o.candidate_score or 0 for o in verdict.orders) / 2)
