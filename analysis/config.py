"""The analysis section: the controller's settings (the policy lives in tunegate/experiments.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AnalysisSettings"]


class AnalysisSettings(BaseModel):
    """The controller loop and report defaults."""

    model_config = ConfigDict(extra="forbid")
    interval_seconds: float = Field(default=60.0, gt=0)
    report_dir: str = ".tunegate/reports"
    # `decide --loop` replicas: only the holder of this Redis lease decides (tunegate/lease.py)
    lease_name: str = Field(default="decide", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    lease_seconds: float = Field(default=15.0, ge=0.3, le=3600)
    # the leader folds new records into the decision state this often between looks
    # (analysis/folder.py), so a look folds only the seconds since; 0 turns it off
    fold_interval_seconds: float = Field(default=2.0, ge=0, le=3600)
