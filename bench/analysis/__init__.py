"""Monte-Carlo study of the promotion rule: false promotions under A/A, stopping times, power."""

from bench.analysis.study import StudyConfig, StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "run_study"]
