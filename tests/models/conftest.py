"""Model fixtures: tiny random models built once per session, and the real packaged models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.models.tiny import build_causal_lm, build_lora
from proxy.config import LocalModelConfig


@pytest.fixture(scope="session", autouse=True)
def _offline() -> Iterator[None]:
    """Nothing in these tests may reach a model hub."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama checkpoint with a byte-level BPE tokenizer and a chat template."""
    return build_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_lora_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A separate tiny base (so no other test has attached adapters to it) and a random LoRA."""
    base = build_causal_lm(tmp_path_factory.mktemp("tiny-lora-base"), seed=3)
    return base, build_lora(base, tmp_path_factory.mktemp("tiny-lora"))


def local_cfg(path: Path | str, **overrides: object) -> LocalModelConfig:
    values: dict[str, object] = {"path": str(path), "device": "cpu", "batch_window_ms": 20.0}
    values.update(overrides)
    return LocalModelConfig.model_validate(values)
