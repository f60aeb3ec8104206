"""Upstream model servers: HTTP (any OpenAI-compatible server) or in-process (torch, lazily)."""

from proxy.upstream.base import Upstream, UpstreamResponse, UpstreamStream

__all__ = ["Upstream", "UpstreamResponse", "UpstreamStream"]
