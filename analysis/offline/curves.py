"""Training-curve diagnosis from the trainer's log: overfitting, the gap, the best checkpoint.

Reads Hugging Face ``trainer_state.json`` (``log_history`` entries with ``loss`` or
``eval_loss`` and ``step``) or TensorBoard event files (the ``tensorboard`` package's
``EventAccumulator``; tags ``train/loss`` and ``eval/loss`` as the Trainer writes them, or
``loss`` / ``eval_loss`` / ``val_loss``). Overfitting is flagged when the validation loss rises
for ``k`` evaluations in a row while the training loss falls over the same steps; the gap is
validation minus training loss at the last evaluation; a warning says when the evaluated
checkpoint is not the one with the lowest validation loss.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from tunegate.errors import ConfigError

__all__ = ["Diagnosis", "TrainingLog", "diagnose", "read_log"]

_TRAIN_TAGS = ("train/loss", "loss", "train_loss", "training/loss")
_EVAL_TAGS = ("eval/loss", "eval_loss", "val_loss", "validation/loss", "val/loss")
Series = list[tuple[int, float]]


@dataclass(frozen=True, slots=True)
class TrainingLog:
    """Training and validation loss by step, and the trainer's own best checkpoint if it said."""

    train: Series
    eval: Series
    best_step: int | None = None
    last_step: int | None = None


def _step_of_checkpoint(path: object) -> int | None:
    if not isinstance(path, str) or "checkpoint-" not in path:
        return None
    tail = path.rstrip("/").rsplit("checkpoint-", 1)[1]
    return int(tail) if tail.isdigit() else None


def _read_trainer_state(path: Path) -> TrainingLog:
    try:
        state = orjson.loads(path.read_bytes())
        history = state["log_history"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a trainer_state.json ({exc})") from None
    if not isinstance(history, list):
        raise ConfigError(f"{path}: log_history must be a list")
    train: Series = []
    evals: Series = []
    for entry in history:
        step = entry.get("step") if isinstance(entry, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        for key, series in (("loss", train), ("eval_loss", evals)):
            value = entry.get(key)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if number and math.isfinite(value):
                series.append((step, float(value)))
    last = state.get("global_step")
    return TrainingLog(
        train,
        evals,
        best_step=_step_of_checkpoint(state.get("best_model_checkpoint")),
        last_step=int(last) if isinstance(last, int) else None,
    )


def _read_events(path: Path) -> TrainingLog:
    with warnings.catch_warnings():  # tensorboard's import warns about its optional backends
        warnings.simplefilter("ignore")
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
    tags = set(accumulator.Tags().get("scalars", []))

    def series(candidates: tuple[str, ...]) -> Series:
        tag = next((t for t in candidates if t in tags), None)
        if tag is None:
            return []
        return [(int(e.step), float(e.value)) for e in accumulator.Scalars(tag)]

    train, evals = series(_TRAIN_TAGS), series(_EVAL_TAGS)
    if not train and not evals:
        raise ConfigError(f"{path}: no loss scalars (looked for {_TRAIN_TAGS + _EVAL_TAGS})")
    steps = [s for s, _ in train + evals]
    return TrainingLog(train, evals, last_step=max(steps))


def read_log(path: Path) -> TrainingLog:
    """A trainer_state.json, a TensorBoard event file, or a folder holding either."""
    if not path.exists():
        raise ConfigError(f"trainer log {path} does not exist")
    if path.is_dir() and (path / "trainer_state.json").is_file():
        return _read_trainer_state(path / "trainer_state.json")
    if path.suffix == ".json":
        return _read_trainer_state(path)
    return _read_events(path)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What the curves say, with the series for the report to draw."""

    train: Series
    eval: Series
    overfitting: bool
    rising_since: int | None  # step of the last evaluation before the rise began
    gap: float | None  # validation - training loss at the last evaluation
    best_step: int | None
    best_eval_loss: float | None
    evaluated_step: int | None
    warnings: list[str] = field(default_factory=list)


def _train_falls(train: Series, start: int, end: int) -> bool:
    inside = [(s, v) for s, v in train if start <= s <= end]
    if len(inside) >= 2:
        steps, values = zip(*inside, strict=True)
        return float(np.polyfit(steps, values, 1)[0]) < 0
    before = [v for s, v in train if s <= start]
    after = [v for s, v in train if s >= end]
    return bool(before and after and after[0] < before[-1])


def _train_at(train: Series, step: int) -> float | None:
    earlier = [v for s, v in train if s <= step]
    return earlier[-1] if earlier else None


def diagnose(log: TrainingLog, k: int = 3, evaluated_step: int | None = None) -> Diagnosis:
    """Overfitting, gap and best-checkpoint warning; ``evaluated_step``: the last step if None."""
    if k < 1:
        raise ValueError("k must be >= 1")
    evals = sorted(log.eval)
    train = sorted(log.train)
    notes: list[str] = []
    rising_since: int | None = None
    for end in range(k, len(evals)):
        window = evals[end - k : end + 1]
        rising = all(b[1] > a[1] for a, b in itertools.pairwise(window))
        if rising and _train_falls(train, window[0][0], window[-1][0]):
            rising_since = window[0][0]
            break
    overfitting = rising_since is not None
    if overfitting:
        notes.append(
            f"overfitting: validation loss rose for {k} evaluations from step {rising_since}"
            " while training loss fell"
        )
    gap = None
    if evals and (train_loss := _train_at(train, evals[-1][0])) is not None:
        gap = evals[-1][1] - train_loss
    best_step = best_loss = None
    if evals:
        best_step, best_loss = min(evals, key=lambda e: (e[1], e[0]))
    evaluated = evaluated_step if evaluated_step is not None else log.last_step
    if evaluated is None and (train or evals):
        evaluated = max(s for s, _ in train + evals)
    if best_step is not None and evaluated is not None and evaluated != best_step:
        at = dict(evals).get(evaluated)
        shown = f" (validation loss {at:.4g})" if at is not None else ""
        notes.append(
            f"the evaluated checkpoint (step {evaluated}){shown} is not the best-validation one"
            f" (step {best_step}, validation loss {best_loss:.4g})"
        )
    if not evals:
        notes.append("no validation loss in the log: overfitting cannot be judged")
    return Diagnosis(
        train=train,
        eval=evals,
        overfitting=overfitting,
        rising_since=rising_since,
        gap=gap,
        best_step=best_step,
        best_eval_loss=best_loss,
        evaluated_step=evaluated,
        warnings=notes,
    )
