"""The proxy pod drains cleanly: a preStop delay before SIGTERM, and a grace period for both."""

from __future__ import annotations

import copy

import helm_python
import pytest
import yaml

from tests.deploy.chart import SCENARIOS, render, scenario_values


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_proxy_waits_before_sigterm_and_has_time_to_drain(name: str) -> None:
    values = scenario_values(name)
    rendered = render(values)
    pod = rendered.get("Deployment", "tg-tunegate-proxy")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and int(command[1]) > 0
    (config_map,) = [c for c in rendered.of("ConfigMap") if "config.yaml" in c["data"]]
    config = yaml.safe_load(config_map["data"]["config.yaml"]) or {}
    drain = (config.get("proxy") or {}).get("shutdown_grace_seconds", 10)
    assert pod["terminationGracePeriodSeconds"] >= int(command[1]) + drain


def test_a_grace_period_shorter_than_delay_plus_drain_is_refused() -> None:
    values = copy.deepcopy(scenario_values("production-values"))  # drain 20 s
    values["proxy"]["terminationGracePeriodSeconds"] = 21
    with pytest.raises(helm_python.HelmRenderError, match="preStopSleepSeconds"):
        render(values)


def test_the_delay_can_be_turned_off() -> None:
    values = copy.deepcopy(scenario_values("minimal-values"))
    values.setdefault("proxy", {})["preStopSleepSeconds"] = 0
    pod = render(values).get("Deployment", "tg-tunegate-proxy")["spec"]["template"]["spec"]
    assert "lifecycle" not in pod["containers"][0]
