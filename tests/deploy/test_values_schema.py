"""values.schema.json with real Helm: every scenario passes; typos and wrong types are refused.

Also the optional standalone Redis: what it renders, how the components reach it, and the
switches that refuse a half-configured one.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import helm_python
import pytest
import redis as redis_client
import yaml

from bench.children import stop_all
from cli.server import free_port
from cli.settings import Settings
from tests.deploy.chart import CHART_DIR, SCENARIOS, render, scenario_values
from tunegate.redis import redis_server_binary

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
MINIMAL = {"redis": {"url": "redis://redis-master.data.svc:6379/0"}}


def _validate(values: dict[str, Any]) -> None:
    with helm_python.Chart.load(CHART_DIR) as chart:
        chart.validate_schema(values)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_meets_the_schema(name: str) -> None:
    _validate(scenario_values(name))


def test_the_defaults_meet_the_schema() -> None:
    _validate({})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"proxi": {"replicaCount": 3}}, "at '': additional properties 'proxi' not allowed"),
        ({"proxy": {"replicas": 3}}, "at '/proxy': additional properties 'replicas' not allowed"),
        ({"proxy": {"replicaCount": "two"}}, "at '/proxy/replicaCount': got string, want integer"),
        ({"proxy": {"service": {"type": "Ingress"}}}, "at '/proxy/service/type'"),
        ({"proxy": {"service": {"port": 70000}}}, "at '/proxy/service/port'"),
        ({"redis": {"url": 6379}}, "at '/redis/url': got number, want string"),
        ({"redis": {"url": "localhost:6379"}}, "at '/redis/url'"),
        ({"redis": {"standalone": {"enabled": "yes"}}},
         "at '/redis/standalone/enabled': got string, want boolean"),
        ({"redis": {"standalone": {"persistence": {"size": 8}}}},
         "at '/redis/standalone/persistence/size': got number, want string"),
        ({"redis": {"standalone": {"persistance": {}}}},
         "at '/redis/standalone': additional properties 'persistance' not allowed"),
        ({"controller": {"observeOnly": "true"}},
         "at '/controller/observeOnly': got string, want boolean"),
        ({"extraEnv": [{"name": "TUNEGATE_LOG_LEVEL", "value": 3}]},
         "at '/extraEnv/0/value': got number, want string"),
        ({"judge": {"extraEnv": [{"value": "x"}]}}, "at '/judge/extraEnv/0'"),
        ({"serviceMonitor": {"interval": 30}}, "at '/serviceMonitor/interval'"),
        ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
        ({"config": {"experiment": []}},
         "at '/config': additional properties 'experiment' not allowed"),
        ({"grafanaDashboard": {"labels": {"grafana_dashboard": 1}}},
         "at '/grafanaDashboard/labels/grafana_dashboard': got number, want string"),
    ],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as raised:
        _validate(values)
    assert message in str(raised.value)
    # A render (what `helm install` and `helm template` do) refuses it the same way.
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(message)):
        render({**MINIMAL, **values})


def _keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in node.items():
        path = f"{prefix}{key}"
        found.add(path)
        if isinstance(value, dict) and value and key not in _OPEN:
            found |= _keys(value, f"{path}.")
    return found


#: Keys whose contents are Kubernetes objects or tunegate's config, not the chart's own keys.
_OPEN = {
    "resources", "podSecurityContext", "securityContext", "labels", "config", "requests",
    "limits", "annotations", "commonLabels", "podAnnotations", "nodeSelector", "affinity",
}  # fmt: skip


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        found.add(path)
        if "$ref" not in value and key not in _OPEN:
            found |= _schema_keys(value, f"{path}.")
    return found


def test_every_values_key_is_in_the_schema_and_the_schema_is_closed() -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert _keys(defaults) <= _schema_keys(SCHEMA)

    def closed(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, path
            for key, value in node.items():
                closed(value, f"{path}/{key}")

    closed(SCHEMA, "")


def test_config_sections_are_those_tunegate_reads() -> None:
    sections = SCHEMA["properties"]["config"]["properties"]
    assert set(sections) == set(Settings.model_fields)


# --- the standalone Redis ------------------------------------------------------------------


def _env(rendered: Any, deployment: str) -> dict[str, str | None]:
    (container,) = rendered.get("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_standalone_redis_is_off_by_default() -> None:
    rendered = render(MINIMAL)
    assert not rendered.of("StatefulSet")
    assert "tg-tunegate-redis" not in {name for _, name in rendered.kinds()}


def test_standalone_redis_renders_and_every_component_uses_it() -> None:
    rendered = render(scenario_values("standalone-redis-values"))
    (redis,) = rendered.of("StatefulSet")
    assert redis["metadata"]["name"] == "tg-tunegate-redis"
    assert redis["spec"]["replicas"] == 1
    pod = redis["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "redis:7.4.2-alpine"
    args = container["args"]
    assert args[0] == "redis-server"
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    # The password comes from the one key of the existing Secret, never from values.
    (env,) = container["env"]
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": "tunegate-credentials",
        "key": "REDIS_PASSWORD",
    }
    assert "envFrom" not in container  # the Redis pod gets no other credential
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data"}
    service = rendered.get("Service", "tg-tunegate-redis")
    assert service["spec"]["ports"][0]["port"] == 6379
    assert service["spec"]["selector"].items() <= pod_labels(redis).items()
    url = "redis://:$(REDIS_PASSWORD)@tg-tunegate-redis:6379/0"
    for component in ("proxy", "judge", "controller"):
        assert _env(rendered, f"tg-tunegate-{component}")["TUNEGATE_REDIS__URL"] == url


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def test_standalone_redis_without_persistence_or_auth() -> None:
    rendered = render({"redis": {"standalone": {"enabled": True}}})
    (redis,) = rendered.of("StatefulSet")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert "--requirepass" not in container["args"] and "env" not in container
    assert container["args"][container["args"].index("--save") + 1] == ""
    assert "volumeClaimTemplates" not in redis["spec"]
    (volume,) = redis["spec"]["template"]["spec"]["volumes"]
    assert volume == {"name": "data", "emptyDir": {}}
    url = _env(rendered, "tg-tunegate-proxy")["TUNEGATE_REDIS__URL"]
    assert url == "redis://tg-tunegate-redis:6379/0"
    assert "data are lost when the pod restarts" in rendered.notes
    assert "it has no password" in rendered.notes
    safe = render(scenario_values("standalone-redis-values")).notes
    assert "one pod, no failover." in safe and "The controller is observe-only" in safe


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"url": "redis://r:6379/0", "standalone": {"enabled": True}}},
         "either redis.url or redis.standalone.enabled, not both"),
        ({"redis": {"standalone": {"enabled": True, "auth": {"enabled": True}}}},
         "needs existingSecret with a REDIS_PASSWORD key"),
    ],
)  # fmt: skip
def test_half_configured_standalone_redis_fails_with_the_reason(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=message):
        render(values)


def test_observe_only_controller() -> None:
    rendered = render({**MINIMAL, "controller": {"observeOnly": True}})
    (container,) = rendered.get("Deployment", "tg-tunegate-controller")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["args"][-1] == "--observe-only"
    default = render(MINIMAL).get("Deployment", "tg-tunegate-controller")
    assert "--observe-only" not in default["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_rendered_redis_command_runs_and_the_rendered_url_reaches_it(tmp_path: Any) -> None:
    """The StatefulSet's args and the components' URL, run with a real redis-server.

    Kubernetes expands $(REDIS_PASSWORD) in args and env values; the test does the same, and
    mounts a temporary directory at /data. With persistence on, a write survives a restart.
    """
    rendered = render(scenario_values("standalone-redis-values"))
    (container,) = rendered.of("StatefulSet")[0]["spec"]["template"]["spec"]["containers"]
    url = _env(rendered, "tg-tunegate-judge")["TUNEGATE_REDIS__URL"]
    assert url is not None
    password, port = "s3cret-Pass_word.~", free_port()

    def expand(text: str) -> str:
        return text.replace("$(REDIS_PASSWORD)", password).replace("/data", str(tmp_path))

    args = [expand(a) for a in container["args"][1:]]
    args[args.index("--port") + 1] = str(port)
    local_url = expand(url).replace("tg-tunegate-redis:6379", f"127.0.0.1:{port}")

    def run_once(write: bool) -> str | None:
        server = subprocess.Popen([redis_server_binary(), *args], stdout=subprocess.DEVNULL)
        try:
            client = redis_client.Redis.from_url(local_url)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis_client.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            intruder = redis_client.Redis(port=port, password="wrong")
            with pytest.raises(redis_client.AuthenticationError):
                intruder.ping()
            intruder.close()
            if write:
                client.set("tg:{exp}:state", "kept")
            value = client.get("tg:{exp}:state")
            client.close()
            return None if value is None else value.decode() if isinstance(value, bytes) else value
        finally:
            stop_all([server], grace_s=10)

    assert run_once(write=True) == "kept"
    assert run_once(write=False) == "kept"  # the append-only file brought it back
