"""Base + LoRA on one shared copy of the weights: control and candidate differ only by adapter."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import torch

from bench.models.tiny import build_lora
from proxy.upstream.local.causal_lm import CausalLMUpstream
from proxy.upstream.local.loading import BASE_ADAPTER
from tests.models.conftest import local_cfg
from tunegate.errors import ConfigError

BODY = orjson.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "What is two plus three?"}],
        "max_tokens": 16,
        "temperature": 0,
    }
)


async def text(upstream: CausalLMUpstream) -> str:
    response = await upstream.send("POST", "/chat/completions", BODY, {}, 30)
    assert response.status == 200, response.body
    return str(orjson.loads(response.body)["choices"][0]["message"]["content"])


def next_token_logits(upstream: CausalLMUpstream, adapter: str | None) -> torch.Tensor:
    lm = upstream.lm
    assert lm is not None
    ids = torch.tensor([lm.tokenizer("What is two plus three?")["input_ids"]])
    with lm.lock, torch.inference_mode():
        out = lm.model(input_ids=ids, **lm.adapter_kwargs([adapter]))
    logits: torch.Tensor = out.logits[0, -1]
    return logits


async def test_adapter_on_and_off_share_one_base(tiny_lora_pair):
    base_dir, adapter_dir = tiny_lora_pair
    control = CausalLMUpstream("control", local_cfg(base_dir))
    candidate = CausalLMUpstream("candidate", local_cfg(base_dir, adapter=str(adapter_dir)))
    async with control:
        before = await text(control)  # the plain base, before any adapter exists
        base_logits = next_token_logits(control, None)
        base_weights = control.lm.model.model.embed_tokens.weight  # type: ignore[union-attr]
        async with candidate:
            assert candidate.lm is control.lm  # one loaded model
            assert candidate.adapter == "candidate"
            lm = candidate.lm
            assert lm is not None
            shared = lm.model.get_base_model().model.embed_tokens.weight
            assert shared.data_ptr() == base_weights.data_ptr()  # same tensor, not a copy
            cand_logits = next_token_logits(candidate, "candidate")
            off_logits = next_token_logits(control, None)
            answers = await asyncio.gather(text(control), text(candidate), text(control))
    assert not torch.allclose(cand_logits, base_logits, atol=1e-4)
    assert torch.allclose(off_logits, base_logits, atol=1e-5)  # adapter off == the base
    assert answers[0] == answers[2] == before
    assert answers[1] != before


async def test_adapter_directory_is_validated(tiny_lora_pair, tmp_path):
    base_dir, _ = tiny_lora_pair
    bad = CausalLMUpstream("bad", local_cfg(base_dir, adapter=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"adapter_config\.json"):
        await bad.start()
    other = build_lora(base_dir, tmp_path / "other", seed=5)
    clash = CausalLMUpstream(
        "c", local_cfg(base_dir, adapter=str(other), adapter_name=BASE_ADAPTER)
    )
    with pytest.raises(ConfigError, match="already used"):
        await clash.start()
    assert "already used" in str(await clash.ready())
    await bad.aclose()
    await clash.aclose()
