"""Root settings: one YAML file plus TUNEGATE_* overrides, composing the planes' own sections.

Priority, highest first: command-line flag (passed as ``overrides``), ``TUNEGATE_…`` variable
(nested with ``__``, e.g. ``TUNEGATE_PROXY__MIRROR__MAX_INFLIGHT=64``), the YAML file, the default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from analysis.config import AnalysisSettings
from judge.config import JudgeSettings
from proxy.config import ProxySettings, UpstreamConfig
from tunegate.errors import ConfigError
from tunegate.experiments import ExperimentConfig
from tunegate.redis import RedisSettings
from tunegate.retention import Retention

__all__ = ["Settings", "format_validation_error", "load_settings"]


class Settings(BaseSettings):
    """Everything one tunegate process needs; built once by the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="TUNEGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    redis: RedisSettings = Field(default_factory=RedisSettings)
    retention: Retention = Field(default_factory=Retention)
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict)
    experiments: list[ExperimentConfig] = Field(default_factory=list)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [e.name for e in self.experiments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"experiments: duplicate name {duplicates[0]!r}")
        for i, experiment in enumerate(self.experiments):
            for arm in ("control", "candidate"):
                upstream = getattr(experiment, arm).upstream
                if upstream not in self.upstreams:
                    raise ValueError(
                        f"experiments[{i}].{arm}.upstream: unknown upstream {upstream!r}"
                        f" (known: {', '.join(sorted(self.upstreams)) or 'none'})"
                    )
        passthrough = self.proxy.passthrough_upstream
        if passthrough is not None and passthrough not in self.upstreams:
            raise ValueError(f"proxy.passthrough_upstream: unknown upstream {passthrough!r}")
        return self

    def experiment(self, name: str) -> ExperimentConfig | None:
        return next((e for e in self.experiments if e.name == name), None)

    @property
    def config_version(self) -> str:
        """A short digest of the configuration (secrets excluded), reported by /readyz."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def format_validation_error(exc: ValidationError) -> str:
    """``experiments[0].ab_weight: Input should be less than or equal to 1`` lines."""
    lines = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, **overrides: object) -> Settings:
    """Settings from flags (``overrides``), environment, YAML, defaults; ConfigError if invalid."""
    yaml_path = Path(path) if path is not None else None
    if yaml_path is not None:
        if not yaml_path.is_file():
            raise ConfigError(f"config file {yaml_path} does not exist")
        try:
            document = yaml.safe_load(yaml_path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {yaml_path} is not valid YAML: {exc}") from exc
        if document is not None and not isinstance(document, dict):
            raise ConfigError(
                f"config file {yaml_path}: the top level must be a mapping of sections"
                f" (redis, upstreams, experiments, ...), not a {type(document).__name__}"
            )

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if yaml_path is not None:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
            return tuple(sources)

    try:
        loaded = _FromFile(**overrides)  # type: ignore[arg-type]  # flags are validated here
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    _check_redis_url(loaded.redis)
    return Settings.model_construct(**dict(loaded))


def _check_redis_url(redis: RedisSettings) -> None:
    """A URL redis-py cannot parse is a configuration error, found before anything connects."""
    if redis.url is None:
        return
    from redis.connection import parse_url  # the client's own parser: what it accepts, we do

    try:
        parse_url(redis.url.get_secret_value())  # type: ignore[no-untyped-call]  # untyped upstream
    except ValueError as exc:
        raise ConfigError(f"redis.url: {exc}") from None
