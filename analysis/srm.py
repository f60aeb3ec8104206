"""Sample-ratio mismatch: do the served arms' counts match the configured split?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from statsmodels.stats.gof import chisquare

__all__ = ["SRM_THRESHOLD", "SrmResult", "sample_ratio_mismatch"]

#: p-value below which the split is declared broken (conventional for SRM checks).
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    control: int
    candidate: int
    expected_candidate_share: float
    observed_candidate_share: float
    p_value: float
    mismatch: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def sample_ratio_mismatch(
    control: int, candidate: int, candidate_weight: float, threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Chi-square goodness of fit of the arm counts to ``candidate_weight``."""
    if control < 0 or candidate < 0:
        raise ValueError("counts must be non-negative")
    if not 0 < candidate_weight < 1:
        raise ValueError(f"candidate_weight must be in (0, 1), got {candidate_weight}")
    total = control + candidate
    if total == 0:
        p_value = 1.0
    else:
        expected = [total * (1 - candidate_weight), total * candidate_weight]
        _, p = chisquare([control, candidate], f_exp=expected)
        p_value = float(p)
    return SrmResult(
        control=control,
        candidate=candidate,
        expected_candidate_share=candidate_weight,
        observed_candidate_share=candidate / total if total else 0.0,
        p_value=p_value,
        mismatch=p_value < threshold,
    )
