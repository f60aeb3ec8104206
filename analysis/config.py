"""The analysis section: the controller's settings (the policy lives in tunegate/experiments.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AnalysisSettings"]


class AnalysisSettings(BaseModel):
    """The controller loop and report defaults."""

    model_config = ConfigDict(extra="forbid")
    interval_seconds: float = Field(default=60.0, gt=0)
    report_dir: str = ".tunegate/reports"
