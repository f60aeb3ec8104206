"""docs/argo-rollouts.md and docs/flagger.md: their values render, their tables match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.chart import CHART_DIR, render
from tests.deploy.rollouts import EXAMPLES_DIR
from tunegate.records import Action
from tunegate.rollout import RESULT_OF

DOCS = CHART_DIR.parents[1] / "docs"
PAGES = ["argo-rollouts.md", "flagger.md"]


def _values_block(page: Path) -> dict[str, object]:
    (block,) = re.findall(r"```yaml\n# my-values.yaml\n(.*?)```", page.read_text(), re.S)
    values: dict[str, object] = yaml.safe_load(block)
    return values


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_values_render_an_observe_only_install(page: str) -> None:
    rendered = render(_values_block(DOCS / page))
    controller = rendered.get("Deployment", "tg-tunegate-controller")
    assert "--observe-only" in controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert rendered.of("AnalysisTemplate") or rendered.of("MetricTemplate")
    assert len(rendered.of("ServiceMonitor")) == 3


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_link_only_shipped_examples(page: str) -> None:
    links = re.findall(r"\(\.\./examples/rollouts/([\w.-]+)\)", (DOCS / page).read_text())
    assert links
    for name in links:
        assert (EXAMPLES_DIR / name).is_file(), name


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_verdict_table_is_the_codes(page: str) -> None:
    text = (DOCS / page).read_text()
    documented: dict[str, str] = {}
    for row in re.findall(r"^\| (`[a-z_]+`.*?) \| `(success|failure|inconclusive)` \|", text, re.M):
        for action in re.findall(r"`([a-z_]+)`", row[0]):
            documented[action] = row[1]
    assert documented == {action.value: result.value for action, result in RESULT_OF.items()}
    assert set(RESULT_OF) == set(Action)
