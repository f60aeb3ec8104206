"""Fine-tune MiniLM for the retrieval demo: a short contrastive run, cached by a hash.

sentence-transformers' MultipleNegativesRankingLoss over (query, right article) pairs of the
training split, with the other articles in the batch as negatives. The cache key covers the
training queries, the articles, the hyperparameters and the base model's weights file, so a later
run reuses the model (and says so). Blocking: run it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from demo.articles import articles, load_queries
from demo.cache import TRAINING_FILE, cache_root, saving

__all__ = ["EmbeddingConfig", "EmbeddingResult", "train_embeddings"]

StepCallback = Callable[[int, int, float], None]

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    steps: int = 60
    batch_size: int = 16
    learning_rate: float = 5e-5
    scale: float = 20.0
    seed: int = 5


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    path: Path
    reused: bool
    seconds: float
    final_loss: float | None
    key: str


def _base_dir() -> Path:
    from proxy.upstream.local.packaged import minilm_dir

    return minilm_dir()


def _pairs() -> list[tuple[str, str]]:
    by_id = {a.id: a.text for a in articles()}
    return [(q.text, by_id[q.candidates[q.relevant]]) for q in load_queries("train")]


def _key(pairs: list[tuple[str, str]], config: EmbeddingConfig, base: Path) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    weights = base / "model.safetensors"
    size = weights.stat().st_size if weights.exists() else 0
    digest.update(f"{_FORMAT}:{size}".encode())
    for query, article in pairs:
        digest.update(query.encode() + b"\0" + article.encode() + b"\0")
    return digest.hexdigest()[:16]


def _train(
    pairs: list[tuple[str, str]],
    config: EmbeddingConfig,
    target: Path,
    on_step: StepCallback | None,
) -> float | None:
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the losses; the old path warns there
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
    except ImportError:
        from sentence_transformers.losses import (  # type: ignore[no-redef]  # older releases
            MultipleNegativesRankingLoss,
        )

    torch.manual_seed(config.seed)
    model = SentenceTransformer(str(_base_dir()), device="cpu", local_files_only=True)
    loss_fn = MultipleNegativesRankingLoss(model, scale=config.scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    rng = random.Random(config.seed)
    order: list[int] = []
    loss_value: float | None = None
    model.train()
    for step in range(1, config.steps + 1):
        if len(order) < config.batch_size:
            fresh = list(range(len(pairs)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch = [pairs[order.pop()] for _ in range(config.batch_size)]
        queries = model.tokenize([q for q, _ in batch])
        docs = model.tokenize([d for _, d in batch])
        loss = loss_fn([queries, docs], torch.arange(len(batch)))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step, config.steps, loss_value)
    training = {"config": asdict(config), "final_loss": loss_value, "examples": len(pairs)}
    with saving(target, training) as partial:
        model.save(str(partial))
    return loss_value


def train_embeddings(
    config: EmbeddingConfig,
    *,
    cache_dir: Path | None = None,
    on_step: StepCallback | None = None,
    force: bool = False,
) -> EmbeddingResult:
    """The fine-tuned MiniLM for ``config``: from the cache when present, else trained."""
    start = time.perf_counter()
    pairs = _pairs()
    key = _key(pairs, config, _base_dir())
    target = cache_root(cache_dir) / "embeddings" / f"minilm-articles-{key}"
    info = target / TRAINING_FILE
    if info.is_file() and not force:
        loss = json.loads(info.read_text()).get("final_loss")
        return EmbeddingResult(target, True, time.perf_counter() - start, loss, key)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    loss = _train(pairs, config, target, on_step)
    return EmbeddingResult(target, False, time.perf_counter() - start, loss, key)
