"""The real packaged models: SmolLM2-135M-Instruct (GGUF) behind the proxy, and MiniLM embeddings.

Each model loads once per session (SmolLM2 takes about 20-30 s on 2 CPU cores); the upstreams
built in each test reuse that copy through the in-process cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client import CollectorRegistry

from bench.models.tiny import build_random_lora_for
from cli.compose import proxy_app
from cli.server import serve_in_thread
from cli.settings import Settings
from proxy.config import LocalModelConfig
from proxy.upstream.local.causal_lm import CausalLMUpstream
from proxy.upstream.local.embeddings import EmbeddingsUpstream
from proxy.upstream.local.loading import LoadedLM, load_causal_lm
from proxy.upstream.local.packaged import minilm_dir, smollm2_gguf
from tests.proxy.conftest import wait_for_pairs as wait_for_any
from tunegate.records import Arm, Pair
from tunegate.responses import parse_response

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]  # the first test loads SmolLM2

SMOL = LocalModelConfig(path="packaged:smollm2", device="cpu", batch_window_ms=20.0)
QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is 2+3? Answer with the number only."}
]


@pytest.fixture(scope="session")
def smollm2() -> LoadedLM:
    return load_causal_lm(SMOL)


@pytest.fixture(scope="session")
def smol_lora(smollm2: LoadedLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_lora_for(smollm2.model.config, tmp_path_factory.mktemp("smol-lora"))


def test_gguf_loads_dequantized_on_cpu(smollm2):
    assert smollm2_gguf().suffix == ".gguf"
    params = sum(p.numel() for p in smollm2.model.parameters())
    assert 130_000_000 < params < 140_000_000  # 134.5 M, the Q4_1 file dequantized
    assert str(smollm2.dtype) == "torch.float32" and smollm2.device.type == "cpu"
    assert smollm2.tokenizer.chat_template


async def test_smollm2_answers_greedily(smollm2):
    body = orjson.dumps({"model": "smol", "messages": QUESTION, "max_tokens": 8, "temperature": 0})
    async with CausalLMUpstream("smol", SMOL) as upstream:
        assert upstream.lm is smollm2
        response = await upstream.send("POST", "/chat/completions", body, {}, 60)
    answer = orjson.loads(response.body)
    assert "5" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] <= 8


@pytest.fixture
def smol_proxy(redis_url: str, smol_lora: Path, smollm2: LoadedLM) -> Iterator[tuple[str, str]]:
    local = {"path": "packaged:smollm2", "device": "cpu", "batch_window_ms": 20.0}
    settings = Settings.model_validate(
        {
            "redis": {"url": redis_url},
            "upstreams": {
                "base": {"local": local, "timeout_seconds": 60},
                "tuned": {"local": {**local, "adapter": str(smol_lora)}, "timeout_seconds": 60},
            },
            "experiments": [
                {
                    "name": "smol",
                    "control": {"upstream": "base"},
                    "candidate": {"upstream": "tuned"},
                }
            ],
            "proxy": {"state_refresh_seconds": 0.05, "shutdown_grace_seconds": 5},
        }
    )
    with serve_in_thread(proxy_app(settings, registry=CollectorRegistry()), timeout=30) as url:
        yield url, redis_url


def wait_for_pairs(redis_url: str, count: int, timeout: float = 60) -> list[Pair]:
    """The smol experiment's pairs that both arms answered, once ``count`` are logged."""
    return wait_for_any(
        redis_url, "smol", count, timeout, where=lambda p: bool(p.control and p.candidate)
    )


def test_chat_through_the_proxy_with_adapter_off_and_on(smol_proxy):
    url, redis_url = smol_proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=90)
    answer = client.chat.completions.create(
        model="smol",
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
    )
    text = answer.choices[0].message.content or ""
    assert "5" in text
    streamed = client.chat.completions.create(
        model="smol",
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == text
    pairs = wait_for_pairs(redis_url, 2)
    for pair in pairs:
        assert pair.served_arm is Arm.CONTROL  # shadow: the base serves, the LoRA is mirrored
        assert pair.control is not None and pair.candidate is not None
        assert pair.candidate.ok and pair.control.ok
        control = parse_response(pair.control)
        candidate = parse_response(pair.candidate)
        assert control.texts == [text]
        assert candidate.texts != control.texts  # adapter on vs off, one shared base


async def test_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = [
        "How do I reset my password?",
        "I forgot my login password and need to change it.",
        "The invoice total is wrong for March.",
    ]
    cfg = LocalModelConfig(kind="embeddings", path="packaged:minilm", device="cpu")
    async with EmbeddingsUpstream("minilm", cfg) as upstream:
        request = orjson.dumps({"model": "minilm", "input": texts})
        body = orjson.loads((await upstream.send("POST", "/embeddings", request, {}, 60)).body)
    vectors = np.array([item["embedding"] for item in body["data"]])
    oracle = SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors, oracle, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2
