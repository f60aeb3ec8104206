"""The pairwise LLM judge of an evaluation: the live path's judge, allowed to gate only once it
passed `tunegate judge calibrate` on labelled pairs.

The calibration record is the JSON that ``tunegate judge calibrate --json`` printed; it must be
for the same judge model as ``judge.endpoint`` and clear the spec's accuracy, kappa and swap
consistency bars. A spec that uses the ``pairwise`` metric without one is a configuration error.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson

from analysis.offline.spec import EvalSpec, JudgeGateSpec
from cli.settings import Settings
from judge.pairwise import PairJudge
from tunegate.errors import ConfigError

__all__ = ["calibrated_judge", "calibration_problems", "uses_judge"]


def uses_judge(spec: EvalSpec) -> bool:
    for test in spec.tests:
        if "pairwise" in test.metrics or any(
            "pairwise" in m for m in test.category_metrics.values()
        ):
            return True
    return False


def calibration_problems(record: dict[str, object], gate: JudgeGateSpec, model: str) -> list[str]:
    """Why a calibration record does not let this judge gate (empty: it may)."""
    problems = []
    if record.get("judge_model") != model:
        problems.append(
            f"it calibrated {record.get('judge_model')!r}, not the configured judge {model!r}"
        )
    for key, bar in (
        ("accuracy", gate.min_accuracy),
        ("kappa", gate.min_kappa),
        ("swap_consistency", gate.min_swap_consistency),
    ):
        value = record.get(key)
        if not isinstance(value, int | float) or math.isnan(value) or value < bar:
            problems.append(f"{key} {value} is below {bar}")
    return problems


def _record(path: Path) -> dict[str, object]:
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"judge.calibration: cannot read {path}: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"judge.calibration: {path} is not a calibration record")
    return value


@asynccontextmanager
async def calibrated_judge(spec: EvalSpec, settings: Settings) -> AsyncIterator[PairJudge | None]:
    """The judge when the spec uses ``pairwise`` (checked against its calibration), else None."""
    if not uses_judge(spec):
        yield None
        return
    endpoint = settings.judge.endpoint
    if endpoint is None:
        raise ConfigError("judge.endpoint: the pairwise metric needs the live path's LLM judge")
    if spec.judge.calibration is None:
        raise ConfigError(
            "judge.calibration: only a judge that passed `tunegate judge calibrate` may gate;"
            " save its --json output and name the file here"
        )
    problems = calibration_problems(_record(spec.judge.calibration), spec.judge, endpoint.model)
    if problems:
        raise ConfigError("judge.calibration: the judge may not gate: " + "; ".join(problems))
    from judge.clients.factory import open_client
    from judge.pairwise import PairwiseJudge

    client = await open_client(endpoint)
    try:
        yield PairwiseJudge(client, settings.judge)
    finally:
        await client.aclose()
