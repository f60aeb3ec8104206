"""pass / fail / inconclusive from paired comparisons, and the exit codes."""

from __future__ import annotations

import numpy as np

from analysis.offline.compare import MetricScores, Scored, compare_metric
from analysis.offline.metrics import MetricKind
from analysis.offline.outcome import Outcome, decide_outcome


def _scores(metric, control, candidate, categories=None, kind=MetricKind.BINARY) -> MetricScores:
    n = len(control)
    return MetricScores(
        metric,
        kind,
        [str(i) for i in range(n)],
        categories or ["c"] * n,
        np.asarray(control, dtype=float),
        np.asarray(candidate, dtype=float),
    )


def _compare(role, scores) -> list[Scored]:
    return compare_metric(
        "set", role, scores, alpha=0.05, acceptable_drop=0.05, resamples=2000, seed=1,
        overall=role == "task",
    )  # fmt: skip


def _task_win(n: int = 60) -> list[Scored]:
    control = np.zeros(n)
    candidate = np.ones(n)
    return _compare("task", _scores("exact_match", control, candidate))


def _probe(
    control_right: int, candidate_right: int, n: int = 200, category: str = "facts"
) -> list[Scored]:
    control = (np.arange(n) < control_right).astype(float)
    candidate = (np.arange(n) < candidate_right).astype(float)
    return _compare("probe", _scores("probe", control, candidate, [category] * n))


def test_task_win_and_unchanged_probes_pass():
    result = decide_outcome(_task_win() + _probe(150, 150), alpha=0.05, probe_fail_drop=0.15)
    assert result.outcome is Outcome.PASS and result.outcome.exit_code == 0
    assert result.verdicts == ["pass", "pass"]


def test_probe_drop_beyond_fail_threshold_fails_and_is_named():
    result = decide_outcome(_task_win() + _probe(180, 100), alpha=0.05, probe_fail_drop=0.15)
    assert result.outcome is Outcome.FAIL and result.outcome.exit_code == 1
    assert len(result.regressions) == 1 and "set/probe [facts]" in result.regressions[0]


def test_probe_drop_between_margins_warns_but_passes():
    # control 180/200, candidate 160/200: a drop of 11 %, clearly beyond 5 %, below 15 %
    found = _probe(180, 160, n=200)
    result = decide_outcome(_task_win() + found, alpha=0.05, probe_fail_drop=0.15)
    assert result.verdicts[1] == "warn"
    assert result.outcome is Outcome.PASS
    assert any("warnings" in r for r in result.reasons)


def test_unsettled_probe_makes_it_inconclusive_with_items_needed():
    found = _probe(10, 9, n=12)  # tiny category: non-inferiority cannot be shown
    result = decide_outcome(_task_win() + found, alpha=0.05, probe_fail_drop=0.15)
    assert result.outcome is Outcome.INCONCLUSIVE and result.outcome.exit_code == 3
    assert result.items_needed is None or result.items_needed > 0


def test_task_regression_in_one_category_fails_even_if_overall_wins():
    n = 120
    categories = ["a"] * 100 + ["b"] * 20
    control = np.r_[np.zeros(100), np.ones(20)]
    candidate = np.r_[np.ones(100), np.zeros(20)]
    found = _compare("task", _scores("exact_match", control, candidate, categories))
    result = decide_outcome(found, alpha=0.05, probe_fail_drop=0.15)
    assert result.outcome is Outcome.FAIL
    assert [r.split(":")[0] for r in result.regressions] == ["set/exact_match [b]"]
    assert len(found) == n // 40  # all, a, b


def test_holm_is_applied_within_each_family():
    result = decide_outcome(_task_win() + _probe(150, 150), alpha=0.05, probe_fail_drop=0.15)
    for scored in result.comparisons:
        assert scored.comparison.p_adjusted is not None


def test_data_failures_fail_the_run():
    result = decide_outcome(
        _task_win(), alpha=0.05, probe_fail_drop=0.15, failures=["task: 30% contaminated"]
    )
    assert result.outcome is Outcome.FAIL and result.regressions == ["task: 30% contaminated"]
