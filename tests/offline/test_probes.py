"""The shipped probe suite holds its own keys; per-category drops and their non-inferiority."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from analysis.offline.metrics import RUBRIC_CHECKS, rubric_score
from analysis.offline.metrics_code import run_tests
from analysis.offline.paired import verdict
from analysis.offline.probes import (
    GENERAL,
    load_suite,
    metric_for,
    probe_comparisons,
    relative_drops,
    suite_path,
)

CATEGORIES = {"reasoning", "arithmetic", "facts", "instruction_following", "code"}


def test_general_suite_shape():
    items = load_suite(GENERAL)
    counts = Counter(i.category for i in items)
    assert set(counts) == CATEGORIES
    assert all(20 <= n <= 40 for n in counts.values())
    assert len({i.id for i in items}) == len(items) == 128
    for item in items:
        assert item.reference, item.id
        if item.category == "code":
            assert item.tests and not item.checks and metric_for(item) == "pass@1"
        else:
            assert item.checks and metric_for(item) == "probe"
            assert all(c["type"] in RUBRIC_CHECKS for c in item.checks), item.id
    limited = load_suite(GENERAL, limit_per_category=3)
    assert Counter(i.category for i in limited) == dict.fromkeys(CATEGORIES, 3)


def test_every_reference_passes_its_key_and_wrong_answers_do_not():
    items = [i for i in load_suite(GENERAL) if i.checks]
    for item in items:
        assert rubric_score(item.reference or "", item.checks or []) == 1.0, item.id
    # a key discriminates: another item's answer fails it (answer-key categories)
    keyed = [i for i in items if i.category in ("reasoning", "arithmetic", "facts")]
    fooled = sum(
        rubric_score(other.reference or "", item.checks or []) == 1.0
        for item, other in zip(keyed, keyed[1:] + keyed[:1], strict=True)
    )
    assert fooled <= len(keyed) // 10
    assert all(rubric_score("I do not know.", i.checks or []) < 1 for i in keyed)


def test_code_references_pass_their_tests_in_the_sandbox():
    code = [i for i in load_suite(GENERAL) if i.tests]
    for item in code:
        result = run_tests(item.reference or "", item.tests or "", timeout_s=10)
        assert result.passed, (item.id, result)
    assert not run_tests("def add(a, b):\n    return a - b", code[0].tests or "").passed


def test_user_suite_and_missing_file(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"id": "m1", "category": "domain", "prompt": "2+2?", "reference": "4",'
        ' "checks": [{"type": "regex", "value": "\\\\b4\\\\b"}]}\n'
    )
    assert suite_path(str(path)) == path
    (item,) = load_suite(str(path))
    assert item.category == "domain" and rubric_score("it is 4", item.checks or []) == 1


def test_relative_drops_and_probe_comparisons():
    cats = ["facts"] * 40 + ["code"] * 40
    control = np.array([1.0] * 30 + [0.0] * 10 + [1.0] * 20 + [0.0] * 20)
    candidate = control.copy()
    candidate[40:52] = 0  # code: 20 right -> 8 right, a 60 % drop
    drops = relative_drops(control, candidate, cats)
    assert drops == {"code": pytest.approx(0.6), "facts": 0.0}
    results = {c.category: c for c in probe_comparisons(control, candidate, cats)}
    assert results["code"].diff == pytest.approx(-0.6) and results["code"].scale == "relative"
    assert verdict(results["code"], 0.05, fail_drop=0.15) == "fail"
    assert verdict(results["facts"], 0.05, fail_drop=0.15) == "pass"  # identical answers
    assert all(c.p_adjusted is not None for c in results.values())
    with pytest.raises(ValueError, match="one control score"):
        relative_drops([1], [1, 0], ["a"])
