"""The example configuration in examples/ loads as the README says it does."""

from __future__ import annotations

from pathlib import Path

from cli.settings import load_settings
from tunegate.records import Stage

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tunegate.yaml"


def test_example_config_loads_and_env_overrides_it(monkeypatch) -> None:
    settings = load_settings(EXAMPLE)
    experiment = settings.experiment("support-bot")
    assert experiment is not None and experiment.stage is Stage.SHADOW
    assert experiment.category_scorers == {"probe": ["contains"]}
    assert settings.judge.endpoint is not None and settings.judge.endpoint.api_key is None
    monkeypatch.setenv("TUNEGATE_PROXY__PORT", "9999")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    settings = load_settings(EXAMPLE)
    assert settings.proxy.port == 9999
    assert settings.judge.endpoint is not None and settings.judge.endpoint.api_key is not None
    assert "sk-example" not in settings.model_dump_json()
