"""The judge gate's error rates by seeded Monte Carlo, looking after every batch of 10 pairs."""

from __future__ import annotations

from bench.analysis.study import StudyConfig, run_study


def test_gate_holds_alpha_and_beats_the_fixed_horizon():
    result = run_study(StudyConfig(runs=2000, seed=20240611))
    assert result.runs == 2000
    assert result.aa_false_promotion <= 0.05
    assert result.aa_false_promotion_upper95 <= 0.05 + 0.01
    assert result.naive_false_promotion > 0.15  # peeking at a fixed-sample test inflates alpha
    assert result.median_stop_ratio_2mde <= 0.35
    assert result.power_at_1_7 >= 0.80
