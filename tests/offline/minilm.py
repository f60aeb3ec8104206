"""The packaged MiniLM as a sentence-transformers model, loaded once per test session."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray


@cache
def _model() -> Any:
    from sentence_transformers import SentenceTransformer

    from proxy.upstream.local.packaged import minilm_dir

    return SentenceTransformer(str(minilm_dir()), device="cpu")


def model() -> Any:
    return _model()


def embed(texts: list[str]) -> NDArray[np.float32]:
    return np.asarray(_model().encode(texts, batch_size=32, convert_to_numpy=True))
