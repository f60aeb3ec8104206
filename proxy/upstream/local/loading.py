"""Load models once per process: checkpoint dirs, GGUF files, PEFT LoRA adapters on a shared base.

Bases are cached by (path, GGUF file, device, dtype), so a control upstream and a candidate
upstream naming the same base share one copy of its weights; the candidate's LoRA adapter is
attached to that one model (PEFT multi-adapter) and selected per forward pass. Loading is blocking:
callers run it in a thread. Nothing here touches a model hub (``local_files_only``).
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from proxy.config import LocalModelConfig
from proxy.upstream.local.gguf_file import load_gguf_lm
from proxy.upstream.local.memo import GreedyMemo, MemoStats
from proxy.upstream.local.packaged import minilm_dir, smollm2_gguf
from tunegate.errors import ConfigError

__all__ = [
    "BASE_ADAPTER",
    "LoadedEncoder",
    "LoadedLM",
    "attach_adapter",
    "greedy_memo_stats",
    "load_causal_lm",
    "load_encoder",
    "resolve_device",
    "resolve_dtype",
]

#: The name PEFT gives the base model (no adapter) in a mixed ``adapter_names`` forward pass.
BASE_ADAPTER = "__base__"

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_mean_tokens": "mean",
}
_cache: dict[tuple[str, str | None, str, str], Any] = {}
_cache_lock = threading.Lock()


@dataclass(eq=False)
class LoadedLM:
    """A causal LM, its tokenizer and the adapters attached to it; one forward pass at a time."""

    model: Any  # PreTrainedModel, or PeftModel once an adapter is attached
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: dict[str, str] = field(default_factory=dict)  # name -> directory
    #: forward()'s KV-cache argument: ``cache`` since transformers 5.x, ``past_key_values`` before
    cache_arg: str = "cache"
    #: finished greedy answers of this base and its adapters (upstreams with ``reuse_greedy``)
    memo: GreedyMemo = field(default_factory=GreedyMemo)

    @property
    def max_positions(self) -> int | None:
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) else None

    def adapter_kwargs(self, adapters: list[str | None]) -> dict[str, object]:
        """Forward kwargs selecting each row's adapter (none when no adapter is attached)."""
        if not self.adapters:
            return {}
        return {"adapter_names": [name or BASE_ADAPTER for name in adapters]}


@dataclass(eq=False)
class LoadedEncoder:
    """A sentence encoder: transformer, tokenizer, pooling mode and normalization."""

    model: Any
    tokenizer: Any
    device: torch.device
    pooling: str  # mean, mean_sqrt_len, cls, max or lasttoken
    normalize: bool
    max_length: int
    dimensions: int
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is bf16 on CUDA that supports it, else fp16 on CUDA, else fp32."""
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _source(cfg: LocalModelConfig) -> tuple[Path, str | None]:
    """The model directory and GGUF file name that ``cfg.path`` names."""
    if cfg.path == "packaged:smollm2":
        gguf = smollm2_gguf()
        return gguf.parent, gguf.name
    if cfg.path == "packaged:minilm":
        return minilm_dir(), None
    path = Path(cfg.path).expanduser().resolve()
    if cfg.gguf_file is None and path.suffix == ".gguf":
        return path.parent, path.name
    target = path / cfg.gguf_file if cfg.gguf_file else path
    if not target.exists():
        raise ConfigError(f"local model path {target} does not exist")
    return path, cfg.gguf_file


def load_causal_lm(cfg: LocalModelConfig) -> LoadedLM:
    """The shared base for ``cfg`` (loaded on first use), with ``cfg.adapter`` not yet attached."""
    directory, gguf = _source(cfg)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    key = (str(directory), gguf, str(device), str(dtype))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            assert isinstance(cached, LoadedLM)
            return cached
        start = time.perf_counter()
        model: Any  # Any: its .to() typing is narrow
        if gguf:  # one parse of the file's metadata for config, tokenizer and weights
            model, tokenizer = load_gguf_lm(directory, gguf, dtype)
        else:
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                directory, dtype=dtype, local_files_only=True
            )
        model.to(device).eval()
        loaded = LoadedLM(model, tokenizer, device, dtype, time.perf_counter() - start)
        if "cache" not in inspect.signature(model.forward).parameters:
            loaded.cache_arg = "past_key_values"
        _cache[key] = loaded
        return loaded


def attach_adapter(lm: LoadedLM, directory: str, name: str) -> str:
    """Attach the LoRA in ``directory`` to the shared model as ``name``; reuse if present."""
    from peft import PeftModel

    path = str(Path(directory).expanduser().resolve())
    if not (Path(path) / "adapter_config.json").is_file():
        raise ConfigError(f"adapter {directory}: no adapter_config.json (not a PEFT adapter)")
    with lm.lock:
        for existing, existing_path in lm.adapters.items():
            if existing_path == path:
                return existing
        if name in lm.adapters or name == BASE_ADAPTER:
            raise ConfigError(f"adapter name {name!r} is already used on this base model")
        with warnings.catch_warnings():  # peft calls an API transformers deprecated for v6
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            if isinstance(lm.model, PeftModel):
                lm.model.load_adapter(path, adapter_name=name)
            else:
                lm.model = PeftModel.from_pretrained(lm.model, path, adapter_name=name)
        lm.model.to(lm.device).eval()
        lm.adapters[name] = path
        return name


def greedy_memo_stats() -> dict[str, MemoStats]:
    """Every loaded causal LM's memo counters, by the adapter's directory (``base``: none)."""
    with _cache_lock:
        models = [m for m in _cache.values() if isinstance(m, LoadedLM)]
    stats: dict[str, MemoStats] = {}
    for lm in models:
        for adapter, counts in lm.memo.stats.items():
            total = stats.setdefault(adapter or "base", MemoStats())
            total.computed += counts.computed
            total.reused += counts.reused
    return stats


def _pooling_config(directory: Path) -> tuple[str, bool, int]:
    """Pooling mode, normalization and max length from a sentence-transformers directory."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return "mean", True, 512
    modules = json.loads(modules_file.read_text())
    pooling, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Normalize"):
            normalize = True
        elif kind.endswith("Pooling"):
            config = json.loads((directory / module["path"] / "config.json").read_text())
            pooling = next((m for k, m in _POOLING.items() if config.get(k)), "mean")
    bert_config = directory / "sentence_bert_config.json"
    max_length = 512
    if bert_config.is_file():
        max_length = int(json.loads(bert_config.read_text()).get("max_seq_length", 512))
    return pooling, normalize, max_length


def load_encoder(cfg: LocalModelConfig) -> LoadedEncoder:
    """The sentence encoder for ``cfg`` (cached by path, device and dtype)."""
    directory, _ = _source(cfg)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    key = (str(directory), "encoder", str(device), str(dtype))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            assert isinstance(cached, LoadedEncoder)
            return cached
        start = time.perf_counter()
        pooling, normalize, max_length = _pooling_config(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model: Any = AutoModel.from_pretrained(directory, dtype=dtype, local_files_only=True)
        model.to(device).eval()
        max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", 512)))
        dimensions = int(model.config.hidden_size)
        loaded = LoadedEncoder(
            model, tokenizer, device, pooling, normalize, max_length, dimensions,
            time.perf_counter() - start,
        )  # fmt: skip
        _cache[key] = loaded
        return loaded
