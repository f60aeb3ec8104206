"""Train the demo's candidate: a PEFT LoRA adapter on SmolLM2 for ticket triage, cached by a hash.

The cache key covers the training tickets, the hyperparameters and the base model file, so a later
run with the same inputs reuses the adapter (and says so) instead of training again. The trainer
also keeps the dequantized base model as a checkpoint beside the adapters, which the proxy loads
in a second or two instead of dequantizing the GGUF file again. Blocking: run it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from demo.cache import TRAINING_FILE, cache_root, saving
from demo.tickets import Ticket, load_tickets, prompt_for

__all__ = ["AdapterResult", "LoraConfig", "base_checkpoint", "cache_root", "train_lora"]

#: Called after each step with (step, total steps, loss).
StepCallback = Callable[[int, int, float], None]

_FORMAT = 1  # bump when the training recipe changes in a way the hash does not see


@dataclass(frozen=True, slots=True)
class LoraConfig:
    """The hyperparameters that, with the data and the base model, define an adapter."""

    steps: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-3
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # LoRA on the upper layers only: the backward pass then stops at the first adapted layer
    first_layer: int = 15
    max_length: int = 192
    seed: int = 7


@dataclass(frozen=True, slots=True)
class AdapterResult:
    """Where the adapter is and how it came to be."""

    path: Path
    base: str  # what the proxy loads as the base: a checkpoint directory or ``packaged:smollm2``
    reused: bool
    seconds: float
    steps: int
    final_loss: float | None
    key: str


def _gguf() -> Path:
    from proxy.upstream.local.packaged import smollm2_gguf

    return smollm2_gguf()


def _key(tickets: list[Ticket], config: LoraConfig, gguf: Path) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    digest.update(f"{_FORMAT}:{gguf.name}:{gguf.stat().st_size}".encode())
    for ticket in tickets:
        digest.update(prompt_for(ticket).encode() + b"\0" + ticket.answer.encode() + b"\0")
    return digest.hexdigest()[:16]


def base_checkpoint(root: Path) -> Path:
    """The directory of the dequantized base checkpoint inside the cache (may not exist yet)."""
    gguf = _gguf()
    return root / f"base-{gguf.stem}-{gguf.stat().st_size}"


def _load_base() -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf()
    extra = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **extra)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **extra)
    return model, tokenizer


def _save_base(model: Any, tokenizer: Any, target: Path) -> bool:
    """Keep the dequantized weights as a plain checkpoint; False when this transformers refuses."""
    if (target / "config.json").is_file():
        return True
    try:
        with saving(target) as partial:
            # The weights are plain float tensors after dequantization; only the GGUF marker
            # blocks save_pretrained, so drop it on this throwaway training copy.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
    except (ValueError, AttributeError, OSError):
        return False
    return True


def _encode(tokenizer: Any, ticket: Ticket, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer, and labels that ignore the prompt (-100)."""
    messages = [{"role": "user", "content": prompt_for(ticket)}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(ticket.answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def _batches(
    examples: list[tuple[list[int], list[int]]], config: LoraConfig, pad_id: int
) -> list[dict[str, Any]]:
    """``config.steps`` batches, left-padded so that every answer ends at the last position."""
    import torch

    rng = random.Random(config.seed)
    order: list[int] = []
    batches = []
    for _ in range(config.steps):
        if len(order) < config.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            order.extend(fresh)
        chosen = [examples[order.pop()] for _ in range(config.batch_size)]
        width = max(len(ids) for ids, _ in chosen)
        ids = [[pad_id] * (width - len(x)) + x for x, _ in chosen]
        labels = [[-100] * (width - len(y)) + y for _, y in chosen]
        mask = [[0] * (width - len(x)) + [1] * len(x) for x, _ in chosen]
        # logits are computed only where a label can be: the answers at the end, plus one
        keep = 1 + max(sum(1 for v in y if v != -100) for _, y in chosen)
        batches.append(
            {
                "input_ids": torch.tensor(ids),
                "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask),
                "keep": min(keep, width),
            }
        )
    return batches


def _loss(model: Any, batch: dict[str, Any]) -> Any:
    """Next-token cross-entropy on the answer tokens, with the LM head run on the last positions."""
    import torch

    keep = batch["keep"]
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        logits_to_keep=keep,
    ).logits
    targets = batch["labels"][:, -keep + 1 :]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100
    )


def _train(
    model: Any,
    tokenizer: Any,
    tickets: list[Ticket],
    config: LoraConfig,
    target: Path,
    on_step: StepCallback | None,
) -> float | None:
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    torch.manual_seed(config.seed)
    peft_config = PeftLoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        layers_to_transform=list(range(config.first_layer, model.config.num_hidden_layers)),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft calls a transformers property that transformers 5 deprecates; not ours to fix
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        peft_model = get_peft_model(model, peft_config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    examples = [_encode(tokenizer, t, config.max_length) for t in tickets]
    optimizer = torch.optim.AdamW(
        [p for p in peft_model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / 5) * (1 - step / max(config.steps, 1))
    )
    peft_model.train()
    loss_value: float | None = None
    for step, batch in enumerate(_batches(examples, config, pad_id), start=1):
        loss = _loss(peft_model, batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step, config.steps, loss_value)
    training = {"config": asdict(config), "final_loss": loss_value, "examples": len(tickets)}
    with saving(target, training) as partial:
        peft_model.save_pretrained(str(partial), save_embedding_layers=False)
    return loss_value


def train_lora(
    config: LoraConfig,
    *,
    cache_dir: Path | None = None,
    on_step: StepCallback | None = None,
    force: bool = False,
) -> AdapterResult:
    """The adapter for ``config``: from the cache when present (unless ``force``), else trained."""
    start = time.perf_counter()
    root = cache_root(cache_dir)
    tickets = load_tickets("train")
    gguf = _gguf()
    key = _key(tickets, config, gguf)
    target = root / "adapters" / f"smollm2-tickets-{key}"
    base_dir = base_checkpoint(root)
    base = str(base_dir) if (base_dir / "config.json").is_file() else "packaged:smollm2"
    info = target / TRAINING_FILE
    if info.is_file() and not force:
        loss = json.loads(info.read_text()).get("final_loss")
        seconds = time.perf_counter() - start
        return AdapterResult(target, base, True, seconds, config.steps, loss, key)
    if force:
        shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    model, tokenizer = _load_base()
    if _save_base(model, tokenizer, base_dir):  # before LoRA layers are injected into it
        base = str(base_dir)
    loss = _train(model, tokenizer, tickets, config, target, on_step)
    return AdapterResult(target, base, False, time.perf_counter() - start, config.steps, loss, key)
