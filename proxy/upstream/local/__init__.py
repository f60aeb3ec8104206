"""In-process model backends (torch + transformers): causal LMs and sentence encoders.

Importing this package is cheap; torch and transformers load only when
:func:`build_local_upstream` builds a backend, so the proxy install never needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.config import LocalModelConfig

if TYPE_CHECKING:
    from proxy.upstream.base import Upstream

__all__ = ["build_local_upstream"]


def build_local_upstream(name: str, cfg: LocalModelConfig) -> Upstream:
    """The backend for ``cfg.kind``; the model loads on ``start()`` or the first request."""
    if cfg.kind == "embeddings":
        from proxy.upstream.local.embeddings import EmbeddingsUpstream

        return EmbeddingsUpstream(name, cfg)
    from proxy.upstream.local.causal_lm import CausalLMUpstream

    return CausalLMUpstream(name, cfg)
