"""Sample-ratio mismatch, sequentially: do the served arms' counts match the configured split?

The test is the Dirichlet-multinomial mixture of Lindon & Malek (2022, "Anytime-valid inference
for multinomial count data"): the Bayes factor of a Dirichlet(k * theta0) prior against the
configured split theta0 is a martingale under the null, so its running maximum crosses 1/alpha
with probability at most alpha however often the controller looks. tests/analysis checks it
against the ``savvi`` package's ``Multinomial``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

__all__ = ["SRM_CONCENTRATION", "SrmResult", "sample_ratio_mismatch", "srm_log_bayes_factor"]

#: Prior concentration k of the Dirichlet mixture (savvi's default).
SRM_CONCENTRATION = 100.0


@dataclass(frozen=True)
class SrmResult:
    control: int
    candidate: int
    expected_candidate_share: float
    observed_candidate_share: float
    p_value: float  # always-valid: 1 / running max of the Bayes factor over the stage
    alpha: float
    min_sample: int
    mismatch: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def srm_log_bayes_factor(served_candidate: ArrayLike, candidate_weight: float) -> np.ndarray:
    """Log Bayes factor after every request (last axis is time), 1 = served by the candidate."""
    if not 0 < candidate_weight < 1:
        raise ValueError(f"candidate_weight must be in (0, 1), got {candidate_weight}")
    served = np.asarray(served_candidate, dtype=np.float64)
    cand = np.cumsum(served, axis=-1)
    n = np.arange(1, served.shape[-1] + 1, dtype=np.float64)
    ctrl = n - cand
    a_cand = SRM_CONCENTRATION * candidate_weight
    a_ctrl = SRM_CONCENTRATION * (1 - candidate_weight)
    return np.asarray(
        gammaln(SRM_CONCENTRATION)
        - gammaln(SRM_CONCENTRATION + n)
        + gammaln(a_cand + cand)
        - gammaln(a_cand)
        + gammaln(a_ctrl + ctrl)
        - gammaln(a_ctrl)
        - cand * math.log(candidate_weight)
        - ctrl * math.log(1 - candidate_weight),
        dtype=np.float64,
    )


def sample_ratio_mismatch(
    served_candidate: ArrayLike, candidate_weight: float, alpha: float, min_sample: int = 1
) -> SrmResult:
    """The sequential SRM test over one stage's requests in time order."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    served = np.asarray(served_candidate, dtype=np.float64)
    total = int(served.size)
    cand = int(served.sum())
    if total == 0:
        p_value = 1.0
    else:
        log_bf = srm_log_bayes_factor(served, candidate_weight)
        p_value = float(min(1.0, math.exp(-max(0.0, float(log_bf.max())))))
    return SrmResult(
        control=total - cand,
        candidate=cand,
        expected_candidate_share=candidate_weight,
        observed_candidate_share=cand / total if total else 0.0,
        p_value=p_value,
        alpha=alpha,
        min_sample=min_sample,
        mismatch=total >= min_sample and p_value <= alpha,
    )
