"""A reduced decision Monte Carlo: the production decide() on seeded streams (bench.analysis).

The full study (10,000 streams a cell, every schedule, tie rate and category count) is
``python -m bench.analysis``; these few cells keep its machinery honest in CI and check the
directions of its targets on fewer runs (run counts are in the cells).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.analysis.decisions import Cell, run_cell
from bench.analysis.streams import (
    Scenario,
    evidence_at,
    generate,
    record_evidence,
    same_evidence,
)
from tunegate.records import Stage


def test_array_evidence_is_what_the_builder_makes_of_the_records():
    """evidence_at() is the fast path of the bench; the production builder is the reference."""
    batch = generate(np.random.default_rng(3), Scenario.uniform("x", 3, 0.5, 0.3), 2, 120)
    weights = np.full(120, 0.25)
    weights[60:] = 0.5  # a ramp half-way: the served arms change from there
    for t in (1, 59, 60, 120):
        assert same_evidence(
            evidence_at(batch, 1, t, weights), record_evidence(batch, 1, t, weights)
        )
    fast = evidence_at(batch, 1, 120, weights)
    scores = fast.judge.scores.copy()
    scores[7] = 1 - scores[7] if scores[7] != 0.5 else 0.0
    wrong = dataclasses.replace(fast, judge=dataclasses.replace(fast.judge, scores=scores))
    assert not same_evidence(wrong, record_evidence(batch, 1, 120, weights))  # the check can fail


def test_screened_run_ends_exactly_like_deciding_at_every_look():
    """Every stream is also driven with decide() at every look: same action at the same look."""
    cells = [
        Cell(Scenario.uniform("aa", 3, 0.5, 0.3), 10, 300, 8, 5, audit=8, check=2),
        Cell(Scenario.one_regresses(2), 10, 400, 4, 6, audit=4, check=2, follow=True),
        Cell(
            Scenario.uniform("ab", 2, 0.5, 0.3), 10, 400, 3, 7, Stage.AB, audit=3, check=1,
            min_exposure=15,
        ),
    ]  # fmt: skip
    for cell in cells:
        result = run_cell(cell)
        assert sum(result.outcomes.values()) == cell.runs
        assert result.audit_mismatches == 0, cell.scenario.name
        assert result.checked_looks >= cell.check * 30 and result.evidence_mismatches == 0


def test_a_a_holds_alpha_where_naive_peeking_does_not():
    result = run_cell(Cell(Scenario.uniform("aa", 2, 0.5, 0.3), 10, 300, 400, 11))
    wrong = result.share("start_ab", "roll_back", "pause")
    assert wrong <= 0.05 + 0.03  # 400 runs: alpha plus about two standard errors
    assert result.naive_share("start_ab", "roll_back") > 0.15  # the old rules, same streams


def test_a_regressing_category_rolls_back_a_candidate_that_wins_overall():
    result = run_cell(Cell(Scenario.one_regresses(2), 10, 1000, 40, 13, follow=True))
    assert result.share("roll_back") >= 0.7  # the bench's 10,000 streams: >= 0.80 by 1,000
    assert result.share("promote") == 0.0
    assert result.naive_share("start_ab") > 0.3  # the old rules start the A/B on most streams


def test_a_winner_is_not_rolled_back_and_starts_the_ab():
    result = run_cell(Cell(Scenario.uniform("win60", 2, 0.6, 0.3), 10, 400, 60, 12))
    assert result.share("roll_back", "stop_equivalent") == 0.0
    assert result.share("start_ab") >= 0.9
    assert all(100 <= look <= 400 for look in result.stops)  # never before the burn-in
