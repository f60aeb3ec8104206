"""The embeddings experiment: MiniLM (control) vs MiniLM fine-tuned on article retrieval.

Traffic follows the retrieval convention: ``input`` is ``[query, doc_0, …]``, the label
``task=retrieval`` and the reference the right document's index; the judge's retrieval scorer
says which arm ranks that document higher. Queries that name an error code and queries that
describe a symptom are separate categories.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from demo.articles import articles, load_queries
from demo.generative import Prepared
from demo.traffic import TrafficItem
from demo.train_embeddings import EmbeddingConfig, train_embeddings
from proxy.config import LocalModelConfig, UpstreamConfig

__all__ = ["EXPERIMENT", "prepare_retrieval", "retrieval_items"]

EXPERIMENT = "kb-search"

_CODE = re.compile(r"\b[A-Z]{2}-\d{3}\b")


def retrieval_items(queries: int | None) -> list[TrafficItem]:
    """The first ``queries`` held-out queries (None: all) as retrieval requests."""
    texts = {a.id: a.text for a in articles()}
    items = []
    for query in load_queries("heldout")[:queries]:
        category = "code-lookup" if _CODE.search(query.text) else "symptom"
        docs = tuple(texts[c] for c in query.candidates)
        items.append(
            TrafficItem(
                category,
                str(query.relevant),
                inputs=(query.text, *docs),
                labels={"task": "retrieval"},
            )
        )
    return items


def _local(path: str) -> UpstreamConfig:
    return UpstreamConfig(
        local=LocalModelConfig(kind="embeddings", path=path, max_batch_size=16, max_queue=256),
        timeout_seconds=600.0,
    )


def prepare_retrieval(
    *,
    steps: int | None,
    queries: int | None,
    cache_dir: Path | None,
    force: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
) -> Prepared:
    """Fine-tune (or reuse) MiniLM and describe the experiment. Blocking: run it in a thread."""
    config = EmbeddingConfig() if steps is None else EmbeddingConfig(steps=steps)
    model = train_embeddings(config, cache_dir=cache_dir, on_step=on_step, force=force)
    return Prepared(
        experiment=EXPERIMENT,
        upstreams={
            "minilm-base": _local("packaged:minilm"),
            "minilm-articles": _local(str(model.path)),
        },
        items=retrieval_items(queries),
        candidate=str(model.path),
        reused=model.reused,
        train_seconds=model.seconds,
        final_loss=model.final_loss,
        max_tokens=0,
    )
