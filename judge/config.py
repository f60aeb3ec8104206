"""The judge plane's settings section: workers, judge endpoints, budgets."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["JudgeEndpoint", "JudgeSettings"]


class JudgeEndpoint(BaseModel):
    """An LLM judge: an OpenAI-compatible URL, or an in-process transformers model path."""

    model_config = ConfigDict(extra="forbid")
    model: str
    base_url: str | None = None
    local_path: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)
    timeout_seconds: float = Field(default=60.0, gt=0)
    input_cost_per_mtok: float = Field(default=0.0, ge=0)
    output_cost_per_mtok: float = Field(default=0.0, ge=0)
    use_logprobs: bool = False
    max_tokens: int = Field(default=512, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    json_schema: bool = True  # request the verdict as a JSON schema (response_format)
    # the openai SDK's HTTP transport: its aiohttp one (openai.DefaultAioHttpClient), or httpx,
    # whose connection pool costs several times the CPU per call with dozens of calls in flight
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"

    @model_validator(mode="after")
    def _one_kind_and_key(self) -> JudgeEndpoint:
        if (self.base_url is None) == (self.local_path is None):
            raise ValueError("set exactly one of base_url or local_path")
        if self.api_key_env and self.api_key is None and os.environ.get(self.api_key_env):
            self.api_key = SecretStr(os.environ[self.api_key_env])
        return self


class JudgeSettings(BaseModel):
    """How judge workers consume pairs and call judges."""

    model_config = ConfigDict(extra="forbid")
    endpoint: JudgeEndpoint | None = None  # None: programmatic scorers only
    concurrency: int = Field(default=8, ge=1)
    batch_size: int = Field(default=16, ge=1)
    claim_idle_seconds: float = Field(default=60.0, gt=0)
    # wrong answers (no verdict in them) are asked again this many times, then dead-lettered;
    # "later" (429, 5xx, timeouts) is never given up on: it waits at the rate-limit gate
    max_retries: int = Field(default=4, ge=0)
    backoff_base_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)  # without a Retry-After
    retry_after_max_seconds: float = Field(default=600.0, ge=0)  # a longer Retry-After is cut
    strict_family_check: bool = False
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    cost_per_hour_usd: float | None = Field(default=None, gt=0)
    # the three limits above hold for all workers together (judge.budget); at most this many
    # seconds' worth of each may be spent at once
    budget_burst_seconds: float = Field(default=1.0, gt=0, le=3600)
    cache_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    max_response_chars: int = Field(default=8000, ge=100)  # the LLM judge sees no more
    # every scorer sees at most this much of each answer and of the reference (bounded cost)
    scorer_max_chars: int = Field(default=200_000, ge=100)
    regex_timeout_seconds: float = Field(default=1.0, gt=0)  # a reference pattern's search
    rationale_max_chars: int = Field(default=1000, ge=0)
    read_block_ms: int = Field(default=1000, ge=1)
    # per-experiment rubric text; with one the user-rubric template is used for that experiment
    rubrics: dict[str, str] = Field(default_factory=dict)
