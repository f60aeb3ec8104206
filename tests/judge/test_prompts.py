"""Template choice, rendering and versioning; metrics exposition; the strict family refusal."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from judge.metrics import JudgeMetrics
from judge.prompts import choose_template, input_from_request, load_template, render
from judge.worker import JudgeWorker
from tests.judge.helpers import make_settings
from tunegate.errors import ConfigError


def test_template_choice_follows_the_pair():
    single = input_from_request({"messages": [{"role": "user", "content": "hi"}]})
    assert choose_template(single).name == "pairwise_general" and single.conversation is None
    multi = input_from_request({"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]})  # fmt: skip
    assert multi.question == "second" and "assistant: reply" in (multi.conversation or "")
    assert choose_template(multi).name == "multiturn"
    ref = input_from_request({"prompt": "2+2="}, reference="4")
    assert ref.question == "2+2=" and choose_template(ref).name == "pairwise_reference"
    rubric = input_from_request({"prompt": "x"}, reference="4", rubric="be kind")
    assert choose_template(rubric).name == "rubric"


def test_render_puts_each_response_in_its_slot_and_asks_analysis_first():
    template = load_template("pairwise_reference")
    judge_input = input_from_request({"prompt": "2+2?"}, reference="4")
    [message] = render(template, judge_input, "$response_b says 4", "five")
    text = message["content"]
    assert text.index("[Response A]\n$response_b says 4") < text.index("[Response B]\nfive")
    assert "[Reference answer]\n4" in text
    assert "longer" in text and "order" in text and "analysis" in text
    assert template.hash == load_template("pairwise_reference").hash and len(template.hash) == 12
    names = ("pairwise_general", "pairwise_reference", "multiturn", "rubric")
    assert len({load_template(n).hash for n in names}) == 4


def test_metrics_touch_zeros_for_dashboards():
    registry = CollectorRegistry()
    JudgeMetrics(registry, ["exp"])
    text = generate_latest(registry).decode()
    for line in (
        'tunegate_judge_parse_failures_total{experiment="exp"} 0.0',
        'tunegate_judge_shortcut_total{experiment="exp",reason="identical"} 0.0',
        'tunegate_judge_swap_consistency{experiment="exp"} 1.0',
        'tunegate_judge_cost_usd_total{experiment="exp"} 0.0',
        'tunegate_judge_pending{experiment="exp"} 0.0',
    ):
        assert line in text


async def test_strict_family_check_refuses_a_judge_of_the_candidates_family(
    redis_url, aredis, judge_url
):
    settings = make_settings(
        redis_url, judge_url=judge_url, judge_model="llama-3-70b", strict_family_check=True
    )
    with pytest.raises(ConfigError, match="llama"):
        async with JudgeWorker(settings.judge, settings.experiments, aredis):
            pass
    relaxed = make_settings(redis_url, judge_url=judge_url, judge_model="llama-3-70b")
    async with JudgeWorker(relaxed.judge, relaxed.experiments, aredis):  # warns only
        pass
