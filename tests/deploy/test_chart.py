"""Render every ci/*-values.yaml scenario with Helm and check the resources a cluster would get."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml

from cli.settings import load_settings
from tests.deploy.chart import CHART_DIR, SCENARIOS, Rendered, render, scenario_values
from tests.deploy.promql import ALERTS_FILE, DASHBOARD_FILE
from tests.deploy.rollouts import validate as validate_against_crd

KUBERNETES_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
ROLLOUT_KINDS = {"AnalysisTemplate", "MetricTemplate"}
COMMANDS = {
    "proxy": ["serve", "--config", "/etc/tunegate/config.yaml"],
    "judge": ["judge", "--config", "/etc/tunegate/config.yaml", "--metrics-port", "9090"],
    "controller": [
        "decide",
        "--config",
        "/etc/tunegate/config.yaml",
        "--all",
        "--loop",
        "--metrics-port",
        "9091",
    ],
}


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    return request.param, render(scenario_values(request.param))


def _deployments(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in rendered.of("Deployment")
    }


def test_scenarios_exist() -> None:
    assert {"minimal-values", "production-values", "proxy-only-values"} <= set(SCENARIOS)


def test_resources_validate_against_the_kubernetes_schemas(scenario: tuple[str, Rendered]) -> None:
    _, rendered = scenario
    for resource in rendered.resources:
        if resource["kind"] in CRD_KINDS:
            assert resource["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        if resource["kind"] in ROLLOUT_KINDS:
            validate_against_crd(resource)  # Argo Rollouts' and Flagger's released CRDs
            continue
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_helm_lint_finds_nothing(scenario: tuple[str, Rendered]) -> None:
    name, _ = scenario
    report = helm_python.lint(CHART_DIR, scenario_values(name), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_pods_run_the_agreed_commands_as_non_root(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    deployments = _deployments(rendered)
    assert deployments, name
    for component, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["args"][: len(COMMANDS[component])] == COMMANDS[component]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"], component
        assert container.get("livenessProbe"), component
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/etc/tunegate"] == "config"
        volumes = {v["name"]: v for v in pod["volumes"]}
        config_map = volumes["config"]["configMap"]["name"]
        assert rendered.get("ConfigMap", config_map)
        for mount_name in mounts.values():
            assert mount_name in volumes
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_probes_and_ports_match_the_cli(scenario: tuple[str, Rendered]) -> None:
    _, rendered = scenario
    deployments = _deployments(rendered)
    if "proxy" in deployments:
        (proxy,) = deployments["proxy"]["spec"]["template"]["spec"]["containers"]
        assert proxy["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e.get("value") for e in proxy["env"]}
        assert env["TUNEGATE_PROXY__HOST"] == "0.0.0.0"
        assert env["TUNEGATE_PROXY__PORT"] == str(proxy["ports"][0]["containerPort"]) == "8080"
    if "judge" in deployments:
        (judge,) = deployments["judge"]["spec"]["template"]["spec"]["containers"]
        assert judge["livenessProbe"]["exec"]["command"] == [
            "tunegate",
            "judge",
            "--check",
            "--config",
            "/etc/tunegate/config.yaml",
        ]


def test_services_and_monitors_select_running_pods(scenario: tuple[str, Rendered]) -> None:
    _, rendered = scenario
    pods = [d["spec"]["template"] for d in rendered.of("Deployment") + rendered.of("StatefulSet")]
    for service in rendered.of("Service"):
        selector = service["spec"]["selector"]
        matched = [p for p in pods if selector.items() <= p["metadata"]["labels"].items()]
        assert len(matched) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in matched[0]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    for monitor in rendered.of("ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in rendered.of("Service") if wanted.items() <= s["metadata"]["labels"].items()
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in services[0]["spec"]["ports"]}


def test_config_map_is_a_valid_tunegate_config(
    scenario: tuple[str, Rendered], tmp_path: Path
) -> None:
    name, rendered = scenario
    (config_map,) = [c for c in rendered.of("ConfigMap") if "config.yaml" in c["data"]]
    path = tmp_path / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    settings = load_settings(path)
    assert [e.name for e in settings.experiments] == [
        e["name"] for e in scenario_values(name).get("config", {}).get("experiments", [])
    ]
    assert "api_key:" not in config_map["data"]["config.yaml"]


def test_credentials_come_only_from_the_existing_secret(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    secret = scenario_values(name).get("existingSecret")
    assert not rendered.of("Secret")
    for deployment in rendered.of("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [e["secretRef"]["name"] for e in container.get("envFrom", [])]
        assert refs == ([secret] if secret else [])
        for env in container["env"]:
            assert not re.search(r"TOKEN|KEY|PASSWORD", env["name"]), env


def test_production_turns_on_monitoring_autoscaling_and_the_models_judge() -> None:
    rendered = render(scenario_values("production-values"))
    assert len(rendered.of("ServiceMonitor")) == 3
    (rule,) = rendered.of("PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS_FILE.read_text())
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    dashboards = [c for c in rendered.of("ConfigMap") if "tunegate.json" in c["data"]]
    (board,) = dashboards
    assert json.loads(board["data"]["tunegate.json"]) == json.loads(DASHBOARD_FILE.read_text())
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["namespace"] == "monitoring"
    proxy = rendered.get("Deployment", "tg-tunegate-proxy")
    assert "replicas" not in proxy["spec"]
    hpa = rendered.get("HorizontalPodAutoscaler", "tg-tunegate-proxy")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tg-tunegate-proxy"
    assert rendered.get("PodDisruptionBudget", "tg-tunegate-proxy")["spec"]["minAvailable"] == 2
    images = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        for d in rendered.of("Deployment")
    }
    assert images == {
        "proxy": "tunegate/tunegate:0.1.0",
        "judge": "tunegate/tunegate:0.1.0-models",
        "controller": "tunegate/tunegate:0.1.0",
    }
    controller = rendered.get("Deployment", "tg-tunegate-controller")
    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["strategy"]["type"] == "Recreate"


def test_minimal_install_has_no_monitoring_objects() -> None:
    rendered = render(scenario_values("minimal-values"))
    kinds = {kind for kind, _ in rendered.kinds()}
    assert kinds == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
    assert len(rendered.of("Deployment")) == 3
    proxy = rendered.get("Deployment", "tg-tunegate-proxy")
    (container,) = proxy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TUNEGATE_REDIS__URL"] == "redis://redis-master.data.svc:6379/0"


def test_proxy_only_install_has_no_judge_or_controller() -> None:
    rendered = render(scenario_values("proxy-only-values"))
    components = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in rendered.resources
        if "app.kubernetes.io/component" in d["metadata"].get("labels", {})
    }
    assert components == {"proxy"}
    assert not rendered.of("ServiceAccount")
    pod = rendered.get("Deployment", "tg-tunegate-proxy")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "inference"


def test_render_without_redis_fails_with_the_reason() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="external Redis is required"):
        render({})


def test_config_change_rolls_the_pods() -> None:
    values = scenario_values("minimal-values")
    before = render(values).get("Deployment", "tg-tunegate-judge")
    after = render({**values, "config": {"log_level": "debug"}}).get(
        "Deployment", "tg-tunegate-judge"
    )
    key = "checksum/config"
    old = before["spec"]["template"]["metadata"]["annotations"][key]
    assert old != after["spec"]["template"]["metadata"]["annotations"][key]


def test_every_values_key_has_a_comment_above_it() -> None:
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    previous = ""
    uncommented = []
    for line in lines:
        stripped = line.strip()
        if re.match(r"^[\w.-]+:", stripped) and not previous.startswith("#"):
            uncommented.append(line)
        if stripped:
            previous = stripped
    assert not uncommented
