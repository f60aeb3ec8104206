"""Build pairs, verdicts and experiments for the analysis tests and the decide() timing bench."""

from __future__ import annotations

import numpy as np

from tunegate.experiments import ArmConfig, ExperimentConfig
from tunegate.records import Arm, ArmResult, Endpoint, Pair, Verdict, Winner

__all__ = ["experiment", "pairs_and_verdicts", "scored_records"]

NOW = 1_800_000_000.0


def experiment(**policy: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "exp",
            "control": ArmConfig(upstream="base").model_dump(),
            "candidate": ArmConfig(upstream="tuned").model_dump(),
            "policy": policy,
        }
    )


def _arm(name: str, latency: float) -> ArmResult:
    return ArmResult(upstream=name, model=name, status=200, body="{}", latency_s=latency)


def pairs_and_verdicts(
    rng: np.random.Generator,
    n: int,
    category: str,
    p_cand: float,
    p_ctrl: float,
    *,
    start: float = NOW - 600,
    served_candidate_share: float = 0.0,
    prefix: str = "",
) -> tuple[list[Pair], list[Verdict]]:
    """Programmatic verdicts: each arm right with its probability, scored like exact match."""
    pairs, verdicts = [], []
    for i in range(n):
        pid = f"{prefix}{category}-{i}"
        t = start + i * 0.1
        served = Arm.CANDIDATE if rng.random() < served_candidate_share else Arm.CONTROL
        pairs.append(
            Pair(
                id=pid,
                experiment="exp",
                time=t,
                endpoint=Endpoint.CHAT,
                request="{}",
                served_arm=served,
                control=_arm("base", rng.gamma(4, 0.05)),
                candidate=_arm("tuned", rng.gamma(4, 0.05)),
                category=category,
            )
        )
        cand, ctrl = float(rng.random() < p_cand), float(rng.random() < p_ctrl)
        score = 0.5 + (cand - ctrl) / 2
        winner = (
            Winner.TIE if score == 0.5 else (Winner.CANDIDATE if score > 0.5 else Winner.CONTROL)
        )
        verdicts.append(
            Verdict(
                pair_id=pid,
                experiment="exp",
                scorer="exact",
                judge_version="1",
                time=t + 0.05,
                winner=winner,
                score=score,
                arm_scores={Arm.CANDIDATE: cand, Arm.CONTROL: ctrl},
                category=category,
            )
        )
    return pairs, verdicts


def scored_records(
    scores: list[float], category: str = "task", start: float = NOW - 600
) -> tuple[list[Pair], list[Verdict]]:
    """One pair and one pairwise verdict per score, 0.1 s apart."""
    pairs, verdicts = [], []
    for i, score in enumerate(scores):
        pid = f"s{i}"
        t = start + i * 0.1
        pairs.append(
            Pair(
                id=pid,
                experiment="exp",
                time=t,
                endpoint=Endpoint.CHAT,
                request="{}",
                served_arm=Arm.CONTROL,
                control=_arm("base", 0.2),
                candidate=_arm("tuned", 0.2),
                category=category,
            )
        )
        verdicts.append(
            Verdict(
                pair_id=pid,
                experiment="exp",
                scorer="pairwise",
                judge_version="1",
                time=t + 0.05,
                score=float(score),
                category=category,
            )
        )
    return pairs, verdicts
