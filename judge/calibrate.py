"""Judge calibration: run a judge over labelled pairs and report agreement and biases.

Input files hold ``[{input, output_1, output_2, label}]`` with ``label`` 1 or 2 (the better
output). Each pair is judged in both orders with output_1 as the "candidate"; a pair score of
.5 is a tie, which never matches a label. The report has accuracy, Cohen's kappa (statsmodels,
over the labels 1, 2 and tie), swap consistency, the share of decisive verdicts that chose the
longer output, and the accuracy of always picking the longer output (equal lengths count wrong).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson
from statsmodels.stats.inter_rater import cohens_kappa

from judge.errors import JudgeError
from judge.pairwise import Comparison, PairJudge, candidate_score, reconcile
from judge.prompts import JudgeInput
from tunegate.records import OrderVerdict

__all__ = [
    "CalibrationReport",
    "LabelledPair",
    "LongerJudge",
    "calibrate",
    "load_golden",
]


@dataclass(frozen=True, slots=True)
class LabelledPair:
    input: str
    output_1: str
    output_2: str
    label: int  # 1 or 2: the better output

    @property
    def longer(self) -> int:
        """1 or 2 for the longer output, 0 when both have the same length."""
        a, b = len(self.output_1), len(self.output_2)
        return 1 if a > b else 2 if b > a else 0


def load_golden(paths: Iterable[Path | str]) -> list[LabelledPair]:
    """Labelled pairs from JSON files, or from every ``*.json`` file in a folder."""
    pairs: list[LabelledPair] = []
    for path in map(Path, paths):
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            for item in orjson.loads(file.read_bytes()):
                label = int(item["label"])
                if label not in (1, 2):
                    raise ValueError(f"{file}: label must be 1 or 2, got {label}")
                pairs.append(
                    LabelledPair(
                        str(item["input"]), str(item["output_1"]), str(item["output_2"]), label
                    )
                )
    return pairs


@dataclass(slots=True)
class CalibrationReport:
    n: int
    judged: int
    failed: int
    accuracy: float
    kappa: float
    swap_consistency: float
    longer_preference: float
    longer_baseline_accuracy: float
    ties: int
    judge_model: str

    def to_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


class LongerJudge:
    """A deterministic baseline: in each order, the longer response wins (equal: tie)."""

    model = "baseline-longer"

    async def compare(
        self, experiment: str, judge_input: JudgeInput, candidate: str, control: str
    ) -> Comparison:
        orders = []
        for order, a, b in (("candidate_first", candidate, control),
                            ("control_first", control, candidate)):  # fmt: skip
            slot_a = 1.0 if len(a) > len(b) else 0.0 if len(b) > len(a) else 0.5
            label = {1.0: "A>B", 0.0: "B>A", 0.5: "A=B"}[slot_a]
            orders.append(
                OrderVerdict(
                    order=order,
                    raw=label,
                    label=label,
                    candidate_score=candidate_score(order, slot_a),  # type: ignore[arg-type]  # a literal above
                )
            )
        score, inconsistent = reconcile(orders[0].candidate_score or 0.0,
                                        orders[1].candidate_score or 0.0)  # fmt: skip
        return Comparison(orders, score, inconsistent, self.model)


def _prediction(score: float) -> int:
    return 1 if score > 0.5 else 2 if score < 0.5 else 0


def _kappa(labels: Sequence[int], predictions: Sequence[int]) -> float:
    categories = [1, 2, 0]
    table = np.zeros((3, 3))
    for label, predicted in zip(labels, predictions, strict=True):
        table[categories.index(label), categories.index(predicted)] += 1
    total = table.sum()
    expected = float((table.sum(0) * table.sum(1)).sum() / total**2) if total else 1.0
    if total == 0 or math.isclose(expected, 1.0):
        return math.nan  # kappa is undefined when chance agreement is certain
    with np.errstate(all="ignore"):  # its z statistic divides by zero for degenerate tables
        return float(cohens_kappa(table).kappa)


async def calibrate(
    judge: PairJudge,
    pairs: Sequence[LabelledPair],
    *,
    concurrency: int = 8,
    progress: Callable[[], None] | None = None,
) -> CalibrationReport:
    """Judge every pair in both orders and compare with the labels."""
    limit = asyncio.Semaphore(concurrency)

    async def one(pair: LabelledPair) -> Comparison | None:
        async with limit:
            try:
                return await judge.compare(
                    "calibration", JudgeInput(question=pair.input), pair.output_1, pair.output_2
                )
            except JudgeError:
                return None
            finally:
                if progress is not None:
                    progress()

    results = await asyncio.gather(*(one(p) for p in pairs))
    judged = [(p, r) for p, r in zip(pairs, results, strict=True) if r is not None]
    labels = [p.label for p, _ in judged]
    predictions = [_prediction(r.score) for _, r in judged]
    decisive = [
        (p, pred) for (p, _), pred in zip(judged, predictions, strict=True) if pred and p.longer
    ]
    n = len(judged)
    return CalibrationReport(
        n=len(pairs),
        judged=n,
        failed=len(pairs) - n,
        accuracy=sum(a == b for a, b in zip(labels, predictions, strict=True)) / n if n else 0.0,
        kappa=_kappa(labels, predictions),
        swap_consistency=sum(not r.inconsistent for _, r in judged) / n if n else 0.0,
        longer_preference=(
            sum(pred == p.longer for p, pred in decisive) / len(decisive) if decisive else math.nan
        ),
        longer_baseline_accuracy=(
            sum(p.longer == p.label for p in pairs) / len(pairs) if pairs else 0.0
        ),
        ties=predictions.count(0),
        judge_model=judge.model,
    )
