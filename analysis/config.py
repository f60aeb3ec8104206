"""The analysis section: the decision policy of an experiment and the controller's settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AnalysisSettings", "Policy"]


class Policy(BaseModel):
    """Pre-registered decision policy of one experiment (see analysis/decide.py)."""

    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    win_rate_bar: float = Field(default=0.5, ge=0, le=1)  # judge lower bound must clear this
    loss_margin: float = Field(default=0.05, ge=0, lt=0.5)  # roll back if upper < 0.5 - margin
    equivalence_margin: float = Field(default=0.02, ge=0, lt=0.5)
    category_regression_tolerance: float = Field(default=0.05, ge=0, lt=1)
    min_pairs: int = Field(default=100, ge=1)  # burn-in before any stage change
    min_exposure_per_stage: int = Field(default=500, ge=1)
    error_rate_margin: float = Field(default=0.01, ge=0)
    latency_p95_margin: float = Field(default=0.2, ge=0)  # relative increase allowed
    success_metric: str = Field(default="judge", pattern="^(judge|live|judge_and_live)$")
    auto_apply: bool = False  # the controller changes stages only when this allows it
    stale_after_seconds: float = Field(default=3600.0, gt=0)
    # planning and the sequential test (analysis/sequential.py, analysis/power.py)
    mde: float = Field(default=0.05, gt=0, lt=0.5)  # minimum detectable win-rate lift
    power: float = Field(default=0.8, gt=0, lt=1)
    prior_sd_ratio: float = Field(default=0.25, gt=0)  # mSPRT prior sd / mde
    tokens_margin: float = Field(default=0.2, ge=0)  # relative increase in tokens allowed
    live_margin: float = Field(default=0.02, ge=0)  # live metric non-inferiority margin
    max_judge_inconsistency: float = Field(default=0.35, gt=0, le=1)  # swap disagreement share
    max_dead_letter_share: float = Field(default=0.2, gt=0, le=1)
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)


class AnalysisSettings(BaseModel):
    """The controller loop and report defaults."""

    model_config = ConfigDict(extra="forbid")
    interval_seconds: float = Field(default=60.0, gt=0)
    report_dir: str = ".tunegate/reports"
