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


class AnalysisSettings(BaseModel):
    """The controller loop and report defaults."""

    model_config = ConfigDict(extra="forbid")
    interval_seconds: float = Field(default=60.0, gt=0)
    report_dir: str = ".tunegate/reports"
