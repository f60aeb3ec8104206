"""The shipped rollout examples, the CRD schemas they must satisfy, and how each tool reads them.

Argo Rollouts evaluates successCondition/failureCondition with expr-lang (Go), and Flagger
compares a query's value with thresholdRange; neither runs here, so this module restates the
small part of each that the examples use, from the tools' documented rules:

- Argo: a measurement is Failed when failureCondition holds, else Successful when
  successCondition holds, else Inconclusive when both are set (with only a successCondition,
  Failed; with only a failureCondition, Successful).
- Argo, a metric over its measurements (analysis/analysis.go's assessMetricStatus): failures
  above failureLimit make it Failed, inconclusives above inconclusiveLimit Inconclusive (these
  limits are checked first), consecutiveSuccessLimit successes in a row Successful, and reaching
  count with neither limit crossed Successful.
- Flagger: a check fails when the value is below thresholdRange.min or above .max.

The condition evaluator accepts only comparisons, `&&`/`||`, `result` and `result[N]` and
literals (a hand-written subset because expr-lang has no Python binding); anything else fails.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = [
    "CRD_DIR",
    "EXAMPLES_DIR",
    "Example",
    "argo_measurement",
    "argo_metric_phase",
    "crd_schema",
    "examples",
    "flagger_check_passes",
    "substitute",
    "validate",
]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples" / "rollouts"
#: The released CRDs of Argo Rollouts and Flagger, beside the checkout (never copied into it).
CRD_DIR = ROOT.parent / "shared" / "data" / "crds"

Resource = dict[str, Any]


@dataclass(frozen=True)
class Example:
    path: Path
    resource: Resource

    @property
    def kind(self) -> str:
        return str(self.resource["kind"])

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.kind}/{self.resource['metadata']['name']}"


def examples() -> list[Example]:
    found = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append(Example(path, doc))
    return found


def _crds() -> dict[tuple[str, str], Resource]:
    """(group/version, kind) -> the served version's openAPIV3Schema, from every CRD file."""
    schemas: dict[tuple[str, str], Resource] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        # libyaml's loader: the CRDs are 2.5 MB of YAML, seconds with the pure-Python one
        for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    api = f"{spec['group']}/{version['name']}"
                    schemas[(api, spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


_SCHEMAS: dict[tuple[str, str], Resource] | None = None


def _strict(schema: Any) -> Any:
    """Unknown fields rejected, as `kubectl apply --validate=strict` does (the API server would
    prune them silently), except where the CRD preserves unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def crd_schema(api_version: str, kind: str) -> Resource:
    """The strict schema of ``kind`` at ``api_version``; KeyError naming what the CRDs serve."""
    global _SCHEMAS
    if _SCHEMAS is None:
        if not CRD_DIR.is_dir():
            raise AssertionError(f"CRDs not found at {CRD_DIR} (../shared/data/crds)")
        _SCHEMAS = _crds()
    key = (api_version, kind)
    if key not in _SCHEMAS:
        raise KeyError(f"{key} is not served by the CRDs; they serve {sorted(_SCHEMAS)}")
    schema = copy.deepcopy(_SCHEMAS[key])
    strict: Resource = _strict(schema)
    strict["properties"]["metadata"] = {"type": "object"}
    return strict


def validate(resource: Resource) -> None:
    """Raise jsonschema.ValidationError when ``resource`` breaks its CRD's schema."""
    schema = crd_schema(resource["apiVersion"], resource["kind"])
    jsonschema.Draft7Validator(schema).validate(resource)


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace {{args.NAME}} (Argo) and {{ variables.NAME }} (Flagger); fail on any other."""

    def one(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in values:
            raise AssertionError(f"no value for {match.group(0)}")
        return values[name]

    out = re.sub(r"\{\{\s*(args|variables)\.([\w-]+)\s*\}\}", one, text)
    leftover = re.findall(r"\{\{.*?\}\}", out)
    if leftover:
        raise AssertionError(f"unknown template variable {leftover[0]}")
    return out


def _evaluate(node: ast.AST, result: object) -> object:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, result)
    if isinstance(node, ast.BoolOp):
        values = [bool(_evaluate(v, result)) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left = _evaluate(node.left, result)
        right = _evaluate(node.comparators[0], result)
        ops: dict[type[ast.cmpop], Any] = {
            ast.Eq: lambda a, b: a == b,
            ast.NotEq: lambda a, b: a != b,
            ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b,
            ast.GtE: lambda a, b: a >= b,
        }
        return ops[type(node.ops[0])](left, right)
    if isinstance(node, ast.Name) and node.id == "result":
        return result
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        container = _evaluate(node.value, result)
        assert isinstance(container, list)
        return container[node.slice.value]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _evaluate(node.operand, result)
        assert isinstance(value, int | float)
        return -value
    raise AssertionError(f"condition uses {ast.dump(node)}, outside the evaluated subset")


def _condition(expr: str, result: object) -> bool:
    python = expr.replace("&&", " and ").replace("||", " or ")
    return bool(_evaluate(ast.parse(python, mode="eval"), result))


def argo_measurement(metric: Resource, result: object) -> str:
    """Successful, Failed or Inconclusive: how Argo Rollouts reads one measured ``result``."""
    success, failure = metric.get("successCondition"), metric.get("failureCondition")
    if failure and _condition(failure, result):
        return "Failed"
    if success and _condition(success, result):
        return "Successful"
    if success and failure:
        return "Inconclusive"
    return "Failed" if success else "Successful"


def flagger_check_passes(metric: Resource, value: float) -> bool:
    """Whether Flagger counts ``value`` as a passed check of ``metric`` (its thresholdRange)."""
    bounds = metric["thresholdRange"]
    if "min" in bounds and value < bounds["min"]:
        return False
    return not ("max" in bounds and value > bounds["max"])


def argo_metric_phase(metric: Resource, measurements: list[str]) -> str:
    """Running, Successful, Failed or Inconclusive after ``measurements`` (in order)."""
    failed = inconclusive = streak = 0
    for count, phase in enumerate(measurements, start=1):
        failed += phase == "Failed"
        inconclusive += phase == "Inconclusive"
        streak = streak + 1 if phase == "Successful" else 0
        if failed > int(metric.get("failureLimit", 0)):
            return "Failed"
        if inconclusive > int(metric.get("inconclusiveLimit", 0)):
            return "Inconclusive"
        limit = int(metric.get("consecutiveSuccessLimit", 0))
        if limit and streak >= limit:
            return "Successful"
        if count >= int(metric["count"]):
            return "Successful"
    return "Running"
