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
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demo.cache import TRAINING_FILE, cache_root, saving
from demo.progress import Stopwatch
from demo.shipped import load_shipped
from demo.tickets import load_tickets, prompt_for

__all__ = [
    "GENERAL_FILE",
    "AdapterResult",
    "LoraConfig",
    "base_checkpoint",
    "cache_root",
    "ensure_base",
    "general_examples",
    "ticket_examples",
    "train_lora",
]

GENERAL_FILE = Path(__file__).parent / "data" / "general.jsonl"

#: Called after each step with (step, total steps, loss).
StepCallback = Callable[[int, int, float], None]

_FORMAT = 3  # bump when the training recipe changes in a way the hash does not see


@dataclass(frozen=True, slots=True)
class LoraConfig:
    """The hyperparameters that, with the data and the base model, define an adapter."""

    # about 2-3 CPU-seconds per example on one core (forward through all 30 layers, backward
    # through the adapted ones). 28 steps of 6 at 4e-3: 14 at 3e-3 left the tickets-only
    # adapter under-trained (field accuracy 0.53) and its probes unharmed, so no story to tell
    steps: int = 28
    batch_size: int = 6
    learning_rate: float = 4e-3
    # rank 8 on the upper 10 of 30 layers: an adapter file of about 1 MB (the demo ships two)
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # LoRA on the upper layers only: the backward pass then stops at the first adapted layer
    first_layer: int = 20
    # the longest ticket prompt with its answer is about 130 tokens: nothing is cut
    max_length: int = 160
    seed: int = 7
    # the share of each batch drawn from the general instruction set (demo/data/general.jsonl):
    # 0 trains on tickets only (the regressing candidate), above 0 mixes general data in
    general_share: float = 0.0


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
    #: (wall, cpu) seconds of each stage of a training run: load, save_base, train
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: where a reused adapter came from: "shipped" (demo/adapters/) or "cache"; "trained" else
    source: str = "trained"


def _gguf() -> Path:
    from proxy.upstream.local.packaged import smollm2_gguf

    return smollm2_gguf()


#: One training example: the user's prompt and the answer the adapter should give.
Example = tuple[str, str]


def ticket_examples() -> list[Example]:
    """The training split of the ticket-triage task."""
    return [(prompt_for(t), t.answer) for t in load_tickets("train")]


def general_examples(path: Path = GENERAL_FILE) -> list[Example]:
    """The project's general instruction set: short questions of the probes' kinds (never the
    probes themselves) with their answers, mixed into the good candidate's training."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [(row["prompt"], row["answer"]) for row in rows]


def _key(pools: list[list[Example]], config: LoraConfig, gguf: Path) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(config), sort_keys=True).encode())
    digest.update(f"{_FORMAT}:{gguf.name}:{gguf.stat().st_size}".encode())
    for pool in pools:
        for prompt, answer in pool:
            digest.update(prompt.encode() + b"\0" + answer.encode() + b"\0")
        digest.update(b"\1")
    return digest.hexdigest()[:16]


def base_checkpoint(root: Path) -> Path:
    """The directory of the dequantized base checkpoint inside the cache (may not exist yet)."""
    gguf = _gguf()
    return root / f"base-{gguf.stem}-{gguf.stat().st_size}"


def _load_base(checkpoint: Path) -> tuple[Any, Any]:
    """The base model: from the kept checkpoint when there is one (seconds), else dequantized
    from the GGUF file (the slow part of a first run)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (checkpoint / "config.json").is_file():
        from proxy.upstream.local.gguf_file import load_gguf_lm

        gguf = _gguf()  # the file's metadata parsed once for config, tokenizer and weights
        return load_gguf_lm(gguf.parent, gguf.name, torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        checkpoint, dtype=torch.float32, local_files_only=True
    )
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


def _encode(tokenizer: Any, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer, and labels that ignore the prompt (-100)."""
    prompt_text, answer = example
    messages = [{"role": "user", "content": prompt_text}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


Encoded = tuple[list[int], list[int]]


def _batches(pools: list[list[Encoded]], config: LoraConfig, pad_id: int) -> list[dict[str, Any]]:
    """``config.steps`` batches, left-padded so that every answer ends at the last position.

    The first pool is the task; a second (general data) fills ``general_share`` of each batch.
    """
    import torch

    rng = random.Random(config.seed)
    general = round(config.general_share * config.batch_size) if len(pools) > 1 else 0
    shares = [config.batch_size - general, general]
    orders: list[list[int]] = [[] for _ in pools]
    batches = []
    for _ in range(config.steps):
        chosen: list[Encoded] = []
        for pool, order, share in zip(pools, orders, shares, strict=False):
            if len(order) < share:
                fresh = list(range(len(pool)))
                rng.shuffle(fresh)
                order.extend(fresh)
            chosen.extend(pool[order.pop()] for _ in range(share))
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
    pools: list[list[Example]],
    config: LoraConfig,
    target: Path,
    on_step: StepCallback | None,
) -> float | None:
    """Train one adapter on ``model`` and save it; the base weights come back unchanged."""
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
    encoded = [[_encode(tokenizer, e, config.max_length) for e in pool] for pool in pools]
    optimizer = torch.optim.AdamW(
        [p for p in peft_model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    warmup = max(1, min(5, config.steps // 4))  # a short run must not spend itself warming up
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * (1 - step / max(config.steps, 1))
    )
    peft_model.train()
    loss_value: float | None = None
    for step, batch in enumerate(_batches(encoded, config, pad_id), start=1):
        loss = _loss(peft_model, batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step, config.steps, loss_value)
    examples = [len(pool) for pool in pools]
    training = {"config": asdict(config), "final_loss": loss_value, "examples": examples}
    with saving(target, training) as partial:
        peft_model.save_pretrained(str(partial), save_embedding_layers=False)
    peft_model.unload()  # take the LoRA layers out again: the next adapter starts from the base
    return loss_value


#: Called with (adapter name, step, total steps, loss).
NamedStepCallback = Callable[[str, int, int, float], None]


def ensure_base(base_dir: Path) -> tuple[str, dict[str, tuple[float, float]]]:
    """The proxy's base: the kept checkpoint, made now (dequantize, save) when there is none."""
    if (base_dir / "config.json").is_file():
        return str(base_dir), {}
    watch = Stopwatch()
    model, tokenizer = _load_base(base_dir)
    loaded = watch.lap()
    watch = Stopwatch()
    base = str(base_dir) if _save_base(model, tokenizer, base_dir) else "packaged:smollm2"
    return base, {"load": loaded, "save_base": watch.lap()}


def train_lora(
    configs: dict[str, LoraConfig],
    *,
    cache_dir: Path | None = None,
    on_step: NamedStepCallback | None = None,
    force: bool = False,
    shipped: bool = True,
) -> dict[str, AdapterResult]:
    """The adapter for each named config: the shipped one (demo/adapters/, hash-checked) when
    ``shipped`` and one was built for this exact recipe, else from the cache (unless ``force``),
    else trained, all in this process over one loaded (dequantized once) copy of the base model."""
    root = cache_root(cache_dir)
    gguf = _gguf()
    tasks, general = ticket_examples(), general_examples()
    base_dir = base_checkpoint(root)
    found: dict[str, tuple[Path, str, int, float | None, str]] = {}
    todo: list[tuple[str, Path, str, list[list[Example]]]] = []
    for name, config in configs.items():
        pools = [tasks, general] if config.general_share > 0 else [tasks]
        key = _key(pools, config, gguf)
        target = root / "adapters" / f"smollm2-{name}-{key}"
        info = target / TRAINING_FILE
        ship = load_shipped(name, key) if shipped and not force else None
        if ship is not None:
            found[name] = (ship.path, key, ship.steps, ship.final_loss, "shipped")
        elif info.is_file() and not force:
            loss = json.loads(info.read_text()).get("final_loss")
            found[name] = (target, key, config.steps, loss, "cache")
        else:
            todo.append((name, target, key, pools))
    results: dict[str, AdapterResult] = {}
    if not todo:
        base, stages = ensure_base(base_dir)
        for i, (name, (path, key, steps, loss, source)) in enumerate(found.items()):
            first = stages if i == 0 else {}
            seconds = sum(wall for wall, _ in first.values())
            results[name] = AdapterResult(
                path, base, True, seconds, steps, loss, key, first, source=source
            )
        return results
    watch = Stopwatch()
    model, tokenizer = _load_base(base_dir)
    loaded = watch.lap()
    watch = Stopwatch()
    # kept before any LoRA layer is injected into the model
    base = str(base_dir) if _save_base(model, tokenizer, base_dir) else "packaged:smollm2"
    saved = watch.lap()
    for name, (path, key, steps, loss, source) in found.items():
        results[name] = AdapterResult(path, base, True, 0.0, steps, loss, key, source=source)
    for i, (name, target, key, pools) in enumerate(todo):
        config = configs[name]
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        watch = Stopwatch()

        def step(s: int, n: int, loss: float, name: str = name) -> None:
            if on_step is not None:
                on_step(name, s, n, loss)

        loss = _train(model, tokenizer, pools, config, target, step)
        stages = {"train": watch.lap()}
        if i == 0:  # the load is shared by every adapter trained in this run
            stages = {"load": loaded, "save_base": saved, **stages}
        seconds = sum(wall for wall, _ in stages.values())
        results[name] = AdapterResult(target, base, False, seconds, config.steps, loss, key, stages)
    return {name: results[name] for name in configs}
