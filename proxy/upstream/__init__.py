"""Upstream model servers: HTTP (any OpenAI-compatible server) or in-process (torch, lazily)."""

from __future__ import annotations

from proxy.config import UpstreamConfig
from proxy.upstream.base import Upstream, UpstreamResponse, UpstreamStream

__all__ = ["Upstream", "UpstreamResponse", "UpstreamStream", "build_upstream"]


def build_upstream(name: str, cfg: UpstreamConfig) -> Upstream:
    """The upstream for one config entry; the in-process backend (torch) is imported only here."""
    if cfg.local is not None:
        from proxy.upstream.local import build_local_upstream  # lazy: pulls torch

        return build_local_upstream(name, cfg.local)
    if cfg.base_url is not None and cfg.base_url.startswith("http://"):
        from proxy.upstream.lean import LeanHttpUpstream  # plain HTTP: the faster client

        return LeanHttpUpstream(name, cfg)
    from proxy.upstream.http import HttpUpstream

    return HttpUpstream(name, cfg)
