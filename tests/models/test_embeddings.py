"""The embeddings backend on tiny random encoders: pooling, normalization, base64, batching."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import orjson
import pytest
import torch

from bench.models.tiny import build_encoder
from proxy.upstream.local.embeddings import EmbeddingsUpstream, pool
from tests.models.conftest import local_cfg

TEXTS = ["The quick brown fox.", "Route this ticket to payments.", "What is two plus three?"]


async def embed(
    upstream: EmbeddingsUpstream, texts: list[str] | str, **fields: object
) -> dict[str, Any]:
    request = orjson.dumps({"model": "enc", "input": texts, **fields})
    response = await upstream.send("POST", "/embeddings", request, {}, 30)
    assert response.status == 200, response.body
    body = orjson.loads(response.body)
    assert isinstance(body, dict)
    return body


def reference(upstream: EmbeddingsUpstream, text: str, mode: str) -> np.ndarray:
    """One text alone, no padding: the vector the batched path must reproduce."""
    encoder = upstream.encoder
    assert encoder is not None
    batch = encoder.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder.model(**batch).last_hidden_state
    vector = pool(hidden, batch["attention_mask"], mode)[0].numpy()
    return vector / np.linalg.norm(vector) if encoder.normalize else vector


@pytest.mark.parametrize(
    ("pooling", "mode", "normalize"),
    [("mean_tokens", "mean", True), ("cls_token", "cls", False), ("max_tokens", "max", True)],
)
async def test_pooling_and_normalization_follow_the_model(tmp_path, pooling, mode, normalize):
    directory = build_encoder(tmp_path / "enc", pooling=pooling, normalize=normalize)
    async with EmbeddingsUpstream("enc", local_cfg(directory)) as upstream:
        body = await embed(upstream, TEXTS)
        assert upstream.encoder is not None and upstream.encoder.pooling == mode
        expected = [reference(upstream, text, mode) for text in TEXTS]
    vectors = np.array([item["embedding"] for item in body["data"]])
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors, np.array(expected), atol=1e-5)
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS)


async def test_base64_float_and_concurrent_batching(tmp_path):
    directory = build_encoder(tmp_path / "enc")
    cfg = local_cfg(directory, max_batch_size=8, batch_window_ms=200.0)
    async with EmbeddingsUpstream("enc", cfg) as upstream:
        floats = await embed(upstream, TEXTS[0])
        packed = await embed(upstream, TEXTS[0], encoding_format="base64")
        assert upstream.batcher is not None
        before = upstream.batcher.batches
        many = await asyncio.gather(*(embed(upstream, [t] * 2) for t in TEXTS * 2))
        batches = upstream.batcher.batches - before
        bad = await upstream.send("POST", "/embeddings", b'{"input": []}', {}, 30)
        wrong_dims = await upstream.send(
            "POST", "/embeddings", b'{"input": "x", "dimensions": 7}', {}, 30
        )
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, floats["data"][0]["embedding"], rtol=1e-6)
    assert batches < len(many)
    for result, text in zip(many, TEXTS * 2, strict=True):
        np.testing.assert_allclose(
            result["data"][0]["embedding"],
            many[TEXTS.index(text)]["data"][1]["embedding"],
            atol=1e-5,
        )
    assert bad.status == 400 and orjson.loads(bad.body)["error"]["param"] == "input"
    assert (
        wrong_dims.status == 400 and orjson.loads(wrong_dims.body)["error"]["param"] == "dimensions"
    )
