"""Builders for judge tests: pairs with chat or embeddings bodies, and settings around them."""

from __future__ import annotations

import uuid

import orjson
from pydantic import SecretStr

from cli.settings import Settings
from judge.config import JudgeEndpoint, JudgeSettings
from proxy.config import UpstreamConfig
from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.records import Arm, ArmResult, Endpoint, Pair, encode
from tunegate.redis import RedisSettings

EXP = "exp"


def chat_body(text: str) -> str:
    return orjson.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        }
    ).decode()  # fmt: skip


def embeddings_body(vectors: list[list[float]]) -> str:
    data = [{"index": i, "embedding": v, "object": "embedding"} for i, v in enumerate(vectors)]
    return orjson.dumps({"object": "list", "data": data}).decode()


def arm(body: str = "", *, status: int | None = 200, error: str | None = None) -> ArmResult:
    return ArmResult(upstream="u", model="m", status=status, error=error, body=body)


def make_pair(
    candidate: str | ArmResult,
    control: str | ArmResult,
    *,
    question: str = "What is 2+2?",
    reference: str | None = None,
    experiment: str = EXP,
    pair_id: str | None = None,
    category: str | None = "math",
    messages: list[dict[str, str]] | None = None,
) -> Pair:
    cand = arm(chat_body(candidate)) if isinstance(candidate, str) else candidate
    ctrl = arm(chat_body(control)) if isinstance(control, str) else control
    request = {"model": experiment, "messages": messages or [{"role": "user", "content": question}]}
    return Pair(
        id=pair_id or uuid.uuid4().hex,
        experiment=experiment,
        endpoint=Endpoint.CHAT,
        request=orjson.dumps(request).decode(),
        served_arm=Arm.CONTROL,
        candidate=cand,
        control=ctrl,
        user_key_hash="u1",
        category=category,
        reference=reference,
    )


def retrieval_pair(candidate: list[list[float]], control: list[list[float]], relevant: int) -> Pair:
    request = {"model": EXP, "input": ["q"] + [f"doc{i}" for i in range(len(candidate) - 1)]}
    return Pair(
        id=uuid.uuid4().hex,
        experiment=EXP,
        endpoint=Endpoint.EMBEDDINGS,
        request=orjson.dumps(request).decode(),
        served_arm=Arm.CONTROL,
        candidate=arm(embeddings_body(candidate)),
        control=arm(embeddings_body(control)),
        reference=str(relevant),
        labels={"task": "retrieval"},
    )


def make_settings(
    redis_url: str,
    *,
    judge_url: str | None = None,
    scorers: list[str] | None = None,
    experiments: tuple[str, ...] = (EXP,),
    judge_model: str = "judge-model",
    **judge: object,
) -> Settings:
    endpoint = None
    if judge_url is not None:
        endpoint = JudgeEndpoint(model=judge_model, base_url=f"{judge_url}/v1", timeout_seconds=2)
    judge_settings: dict[str, object] = {
        "endpoint": endpoint,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "max_retries": 2,
        "claim_idle_seconds": 1.0,
        "heartbeat_seconds": 0.5,
        "read_block_ms": 50,
    }
    judge_settings.update(judge)
    return Settings(
        redis=RedisSettings(url=SecretStr(redis_url)),
        upstreams={
            "base": UpstreamConfig(base_url="http://127.0.0.1:1/v1"),
            "ft": UpstreamConfig(base_url="http://127.0.0.1:2/v1"),
        },
        experiments=[
            ExperimentConfig(
                name=name,
                control=ArmConfig(upstream="base", model="llama-base"),
                candidate=ArmConfig(upstream="ft", model="llama-ft"),
                scorers=scorers or ["auto"],
            )
            for name in experiments
        ],
        judge=JudgeSettings.model_validate(judge_settings),
    )


def encoded(pair: Pair) -> dict[str, bytes]:
    return encode(pair)
