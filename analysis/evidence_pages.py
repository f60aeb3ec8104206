"""A page of outcome fields decoded at once: pair rows and verdict columns without a Python step
per record.

The incremental store (analysis/evidence_store.py) receives a page's outcome fields
(tunegate/outcomes.py) as one byte string, joined by ``0xFF``: a byte no UTF-8 text, hence no
JSON value, contains, so splitting at it gives back every value exactly or shows (one piece too
many) that some value is not JSON. Each piece is parsed by orjson, then every column is checked
as a whole (the set of its types, not each value in a Python loop) against exactly what
:func:`tunegate.outcomes.load_pair_outcome` and :func:`~tunegate.outcomes.load_verdict_outcome`
accept, and turned into numpy arrays by the rules of analysis/evidence_columns.py's
``outcome_row`` and ``judge_row``. Any value they would refuse makes the whole page irregular
(None): the store then folds that page record by record, as before, so the rows, counters and
state are the same either way (tests/analysis/test_evidence_pages.py compares the bytes).
Irregular pages are rare: a schema-1 pair or a foreign writer's entry. What a page of verdicts
does to the judged rows is analysis/verdict_join.py.

Written here rather than with a schema library (msgspec, pydantic) because the point is the
per-column check: those validate value by value, which is the cost this module removes.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from analysis.evidence import UNCATEGORIZED, WINNER_SCORE
from analysis.evidence_columns import PAIR_ROW
from tunegate.records import Arm

__all__ = ["SEPARATOR", "VerdictColumns", "pair_rows", "split", "verdict_columns"]

SEPARATOR = b"\xff"
_NUMBER: set[type] = {float, int}
_OPTIONAL_NUMBER: set[type] = {float, int, type(None)}
_OPTIONAL_INT: set[type] = {int, type(None)}
_WINNER_SCORE = {winner.value: score for winner, score in WINNER_SCORE.items()}
_ARMS = {arm.value for arm in Arm}


def split(blob: bytes, n: int) -> list[bytes] | None:
    """The ``n`` values of a joined page; None when some value held the separator (not JSON)."""
    if n == 0:
        return []
    pieces = blob.split(SEPARATOR)
    return pieces if len(pieces) == n else None


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic collector paused: a page is thousands of new lists that live until its rows
    are built, which otherwise sets off collections of older generations, over the process's
    whole heap, every few pages. The values hold no cycles: reference counting frees them
    before the collector is back."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(values: list[bytes], size: int) -> list[list[Any]] | None:
    try:
        items: list[list[Any]] = list(map(orjson.loads, values))
    except orjson.JSONDecodeError:
        return None
    if set(map(type, items)) != {list} or set(map(len, items)) != {size}:
        return None
    return items


def _types(column: tuple[Any, ...], allowed: set[type]) -> bool:
    return set(map(type, column)) <= allowed


def _floats(column: tuple[Any, ...] | list[Any]) -> np.ndarray:
    """float() of each value, None as nan (numpy's conversion of a Python int is float()'s)."""
    return np.array(column, dtype=np.float64)


def _present(column: tuple[Any, ...]) -> np.ndarray:
    return np.fromiter(map(operator.is_not, column, repeat(None)), dtype=bool, count=len(column))


def _arm_columns(column: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(error code, latency, tokens) of one arm per pair, as ``outcome_row`` has them."""
    if not _types(column, {list, type(None)}):
        return None
    present = _present(column)
    n = len(column)
    codes = np.full(n, -1, dtype=np.int8)
    latency = np.full(n, math.nan)
    tokens = np.full(n, math.nan)
    arms = [a for a in column if a is not None]
    if not arms:
        return codes, latency, tokens
    if set(map(len, arms)) != {4}:
        return None
    ok, lat, completion, total = zip(*arms, strict=True)
    if set(map(type, ok)) != {bool} or not _types(lat, _OPTIONAL_NUMBER):
        return None
    if not (_types(completion, _OPTIONAL_INT) and _types(total, _OPTIONAL_INT)):
        return None
    good = np.array(ok, dtype=bool)
    count = _floats(completion)
    count = np.where(np.isnan(count), _floats(total), count)  # the total when no completion
    at = np.flatnonzero(present)
    codes[at] = np.where(good, 0, 1)
    latency[at] = np.where(good, _floats(lat), math.nan)
    tokens[at] = np.where(good, count, math.nan)
    return codes, latency, tokens


def pair_rows(values: list[bytes]) -> np.ndarray | None:
    """PAIR_ROW rows of a page of pair outcome fields; None when any would be refused."""
    with _no_collection():
        return _pair_rows(values)


def _pair_rows(values: list[bytes]) -> np.ndarray | None:
    items = _parse(values, 4)
    if items is None:
        return None
    if not items:
        return np.zeros(0, dtype=PAIR_ROW)
    time, served, control, candidate = zip(*items, strict=True)
    if not _types(time, _NUMBER) or set(map(type, served)) != {bool}:
        return None
    control_columns, candidate_columns = _arm_columns(control), _arm_columns(candidate)
    if control_columns is None or candidate_columns is None:
        return None
    arms = (control_columns, candidate_columns)
    rows = np.empty(len(items), dtype=PAIR_ROW)
    rows["time"] = _floats(time)
    rows["served"] = np.array(served, dtype=np.int8)
    for arm, (codes, latency, tokens) in zip(("control", "candidate"), arms, strict=True):
        rows[f"err_{arm}"] = codes
        rows[f"lat_{arm}"] = latency
        rows[f"tok_{arm}"] = tokens  # float64 -> float32, as the tuples' conversion
    return rows


@dataclass
class VerdictColumns:
    """A page of verdict outcomes as columns, with what ``_fold_verdicts`` derives of each."""

    pair_ids: list[str]
    scorers: list[str]
    categories: list[str]  # ``category or UNCATEGORIZED``
    times: np.ndarray
    scores: np.ndarray  # verdict_score(), nan where it is None
    candidate: np.ndarray  # arm_score(), nan: unknown
    control: np.ndarray
    refused: np.ndarray  # bool: a score or per-arm score outside [0, 1]
    inconsistent: np.ndarray  # bool


def _in_unit(x: np.ndarray) -> np.ndarray:
    inside: np.ndarray = np.isfinite(x) & (x >= 0.0) & (x <= 1.0)
    return inside


def verdict_columns(values: list[bytes]) -> VerdictColumns | None:
    """The columns of a page of verdict outcome fields; None when any would be refused."""
    with _no_collection():
        return _verdict_columns(values)


def _verdict_columns(values: list[bytes]) -> VerdictColumns | None:
    items = _parse(values, 8)
    if items is None:
        return None
    if not items:
        return None  # the caller has nothing to fold
    pid, scorer, time, score, winner, scores, category, inconsistent = zip(*items, strict=True)
    if not (_types(pid, {str}) and _types(scorer, {str}) and _types(time, _NUMBER)):
        return None
    if not (_types(score, _OPTIONAL_NUMBER) and _types(winner, {str, type(None)})):
        return None
    if not (_types(scores, {dict, type(None)}) and _types(category, {str, type(None)})):
        return None
    if set(map(type, inconsistent)) != {bool} or not set(winner) - {None} <= _WINNER_SCORE.keys():
        return None
    given = [d for d in scores if d]
    if given:
        if not set().union(*given) <= _ARMS:
            return None
        if not set(map(type, (v for d in given for v in d.values()))) <= _NUMBER:
            return None
    n = len(items)
    raw = _floats(score)
    won = _floats([_WINNER_SCORE.get(w) if w is not None else None for w in winner])
    arm = {name: np.full(n, math.nan) for name in _ARMS}
    bad_arm = np.zeros(n, dtype=bool)
    if given:  # per-arm scores (programmatic scorers); an empty mapping counts as none
        for name in _ARMS:
            given_values: list[Any] = [d.get(name) if d else None for d in scores]
            arm[name] = _floats(given_values)
            bad_arm |= _present(tuple(given_values)) & ~_in_unit(arm[name])
    has_score = _present(score)
    return VerdictColumns(
        pair_ids=list(pid),
        scorers=list(scorer),
        categories=[c or UNCATEGORIZED for c in category],
        times=_floats(time),
        scores=np.where(has_score, raw, won),
        candidate=arm[Arm.CANDIDATE.value],
        control=arm[Arm.CONTROL.value],
        refused=(has_score & ~_in_unit(raw)) | bad_arm,
        inconsistent=np.array(inconsistent, dtype=bool),
    )
