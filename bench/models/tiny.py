"""Tiny random-weight models built in code: a byte-level BPE tokenizer, a Llama, a LoRA, a BERT."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Support ticket: the billing page shows error E42 after login.",
    "What is two plus three? The answer is five.",
    "Route this ticket to the payments team with high severity.",
    "A small model answers short questions about products and codes.",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(with_chat_template: bool = True) -> PreTrainedTokenizerFast:
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|pad|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(SENTENCES, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=core,
        pad_token="<|pad|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    if with_chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_causal_lm(directory: Path, seed: int = 0) -> Path:
    """Save a 2-layer Llama (hidden 32) with random weights and its tokenizer to ``directory``."""
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_lora(base_dir: Path, directory: Path, seed: int = 1) -> Path:
    """Save a LoRA adapter with random (non-zero) weights for the model in ``base_dir``."""
    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    with warnings.catch_warnings():  # peft calls a transformers API deprecated for v6
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        get_peft_model(base, config).save_pretrained(str(directory))
    return directory


def build_encoder(directory: Path, pooling: str = "mean_tokens", normalize: bool = True) -> Path:
    """Save a 2-layer BERT with random weights as a sentence-transformers directory."""
    tokenizer = build_tokenizer(with_chat_template=False)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir()
    flags = {f"pooling_mode_{m}": m == pooling for m in ("cls_token", "mean_tokens", "max_tokens")}
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(flags))
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    return directory


def build_random_lora_for(config: object, directory: Path, r: int = 8, seed: int = 2) -> Path:
    """A random LoRA on q_proj/v_proj for a Llama ``config``, written without loading the model."""
    from safetensors.torch import save_file

    hidden = int(config.hidden_size)  # type: ignore[attr-defined]
    heads = int(config.num_attention_heads)  # type: ignore[attr-defined]
    kv_heads = int(config.num_key_value_heads)  # type: ignore[attr-defined]
    layers = int(config.num_hidden_layers)  # type: ignore[attr-defined]
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for layer in range(layers):
        for name, out in (("q_proj", heads * head_dim), ("v_proj", kv_heads * head_dim)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(r, hidden, generator=generator) * 0.05
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out, r, generator=generator) * 0.05
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"])
    config.save_pretrained(str(directory))
    return directory
