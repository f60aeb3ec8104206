"""A reduced decision Monte Carlo: the production decide() on seeded streams (bench.analysis).

The full study (10,000 streams a cell, every schedule, tie rate and category count) is
``python -m bench.analysis``; these few cells keep its machinery honest in CI and check the
directions of its targets on fewer runs (run counts are in the cells).
"""

from __future__ import annotations

from bench.analysis.decisions import Cell, run_cell
from bench.analysis.streams import Scenario
from tunegate.records import Stage


def test_screened_run_ends_exactly_like_deciding_at_every_look():
    """Every stream is also driven with decide() at every look: same action at the same look."""
    cells = [
        Cell(Scenario.uniform("aa", 3, 0.5, 0.3), 10, 300, 8, 5, audit=8),
        Cell(Scenario.one_regresses(2), 10, 300, 4, 6, audit=4),
        Cell(
            Scenario.uniform("ab", 2, 0.5, 0.3), 10, 400, 3, 7, Stage.AB, audit=3, min_exposure=15
        ),
    ]
    for cell in cells:
        result = run_cell(cell)
        assert sum(result.outcomes.values()) == cell.runs
        assert result.audit_mismatches == 0, cell.scenario.name


def test_a_a_holds_alpha_where_naive_peeking_does_not():
    result = run_cell(Cell(Scenario.uniform("aa", 2, 0.5, 0.3), 10, 300, 400, 11))
    wrong = result.share("start_ab", "roll_back", "pause")
    assert wrong <= 0.05 + 0.03  # 400 runs: alpha plus about two standard errors
    assert result.naive_share("start_ab", "roll_back") > 0.15  # the old rules, same streams


def test_a_winner_is_not_rolled_back_and_starts_the_ab():
    result = run_cell(Cell(Scenario.uniform("win60", 2, 0.6, 0.3), 10, 400, 60, 12))
    assert result.share("roll_back", "stop_equivalent") == 0.0
    assert result.share("start_ab") >= 0.9
    assert all(100 <= look <= 400 for look in result.stops)  # never before the burn-in
