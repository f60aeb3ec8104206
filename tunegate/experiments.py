"""The experiment definition as plain data: arms, stage, ramp, shadow budget, decision policy.

Every plane reads these models; none of them imports a plane. The root settings (cli/settings.py)
hold a list of them, and the proxy, judge and controller each take that list beside their own
section.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunegate.records import Stage

__all__ = ["ArmConfig", "ExperimentConfig", "Policy", "ShadowBudget"]


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
    latency_p95_slack_s: float = Field(default=0.0, ge=0)  # and an absolute one, in seconds
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
    srm_threshold: float = Field(default=0.001, gt=0, lt=1)  # caps the SRM test's alpha share
    # minimum samples of the always-valid tests (issue 13; analysis/budget.py splits alpha)
    min_rollback_pairs: int = Field(default=20, ge=1)  # early roll-back paths, SRM, per category
    min_live_users: int = Field(default=30, ge=2)  # users per arm before a live test may act
    # the judge-corrected win rate (analysis/ppi.py): "corrected" lets it, not the raw judge's
    # always-valid test, decide judge superiority, once min_labels human labels exist
    judge_estimate: str = Field(default="raw", pattern="^(raw|corrected)$")
    min_labels: int = Field(default=30, ge=2)
    # the offline gate (tunegate eval --record): refuse to start the A/B without a recorded pass
    require_offline_pass: bool = False
    offline_version: str | None = (
        None  # the candidate version to look for; None: its model/upstream
    )


class ArmConfig(BaseModel):
    """Which upstream serves an arm, and the model name to send it (None keeps the client's)."""

    model_config = ConfigDict(extra="forbid")
    upstream: str
    model: str | None = None


class ShadowBudget(BaseModel):
    """Caps on what shadow copies cost per experiment; over budget a copy is skipped and counted."""

    model_config = ConfigDict(extra="forbid")
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class ExperimentConfig(BaseModel):
    """One control-vs-candidate experiment behind one public model name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[^{}\s]+$")  # the model name clients request
    control: ArmConfig
    candidate: ArmConfig
    stage: Stage = Stage.SHADOW  # initial stage; the state hash in Redis wins when present
    ab_weight: float = Field(default=0.0, ge=0, le=1)  # candidate share in the ab stage
    ramp: list[float] = Field(default_factory=lambda: [0.01, 0.05, 0.25, 0.5])
    mirror_rate: float = Field(default=1.0, ge=0, le=1)
    # "header:<name>" or "user" (the OpenAI `user` field) or "none"
    sticky_key: str = Field(default="header:x-user-id", pattern=r"^(header:.+|user|none)$")
    # "header:<name>" or "metadata:<key>" (the request's `metadata` object) or "none"
    category_from: str = Field(
        default="header:x-tunegate-category", pattern=r"^(header:.+|metadata:.+|none)$"
    )
    reference_from: str = Field(
        default="header:x-tunegate-reference", pattern=r"^(header:.+|metadata:.+|none)$"
    )
    shadow_budget: ShadowBudget = Field(default_factory=ShadowBudget)
    scorers: list[str] = Field(default_factory=lambda: ["auto"])  # judge/scorers registry names
    # per category, the reference scorers that ``auto`` uses instead of its own pick
    # (json_fields / normalized), e.g. {"probe": ["contains"]} for short key answers
    category_scorers: dict[str, list[str]] = Field(default_factory=dict)
    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _ramp_sorted(self) -> ExperimentConfig:
        if any(not 0 < w <= 1 for w in self.ramp) or self.ramp != sorted(self.ramp):
            raise ValueError("ramp: weights must be increasing and within (0, 1]")
        return self
