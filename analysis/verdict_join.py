"""A page of verdicts joined to the judged rows: which verdict makes a new row, which replaces
one, and the counters, record by record or on a page's columns, with the same result.

A judged pair has one row (analysis/evidence_store.py). Within a page a pair's first counted
verdict makes its row and a later one replaces it when :func:`analysis.evidence.outranks` says
so, as the full read prefers one; a verdict for a pair whose row an earlier page wrote (found in
the store's sorted set of pair ids, ``stored``) replaces that row on the same rule. Refused
scores are counted and skipped, unscored verdicts skipped, pairwise ones counted.

:func:`fold_verdict_records` is that rule on verdict records (the store's path for a page that
did not decode at once); :func:`fold_verdict_columns` the same on the columns of a decoded page
(analysis/evidence_pages.py), with a Python step only for a pair seen twice or already stored.
tests/analysis/test_evidence_pages.py checks that both give the same bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from analysis.evidence import PAIRWISE, VerdictLike, outranks, refused, verdict_score
from analysis.evidence_columns import JUDGE_ROW, Names, judge_row
from analysis.evidence_pages import VerdictColumns

__all__ = ["JudgedPage", "Stored", "fold_verdict_columns", "fold_verdict_records"]

_JudgeRow = tuple[float, float, float, float, int, int]
Stored = dict[str, tuple[int, _JudgeRow]]  # pair id -> (its row's number, the row)


@dataclass
class JudgedPage:
    """What a page of verdicts adds: new rows, their pair ids, replaced stored rows, counters."""

    rows: np.ndarray  # JUDGE_ROW
    ids: dict[str, int]  # pair id -> row, for the new rows
    replaced: dict[int, _JudgeRow]
    bad_scores: int
    pairwise: int
    inconsistent: int


def fold_verdict_records(
    verdicts: list[VerdictLike], stored: Stored, names: Names, first: int
) -> JudgedPage:
    """The join on records, in order. ``first`` is the store's next judged row number."""
    judged: list[_JudgeRow] = []
    ids: dict[str, int] = {}
    replaced: dict[int, _JudgeRow] = {}
    current: dict[int, _JudgeRow] = {}  # stored rows this page looked at, as they stand now
    bad_scores = pairwise = inconsistent = 0
    for v in verdicts:
        if refused(v):
            bad_scores += 1
            continue
        if verdict_score(v) is None:
            continue
        if v.scorer == PAIRWISE:
            pairwise += 1
            inconsistent += int(v.inconsistent)
        row = judge_row(v, names)
        at = ids.get(v.pair_id)
        if at is None and v.pair_id in stored:
            at = stored[v.pair_id][0]
            current.setdefault(at, stored[v.pair_id][1])
        if at is None:
            ids[v.pair_id] = first + len(judged)
            judged.append(row)
            continue
        old = judged[at - first] if at >= first else current[at]
        if not outranks(v.scorer, v.time, names.names[old[5]], old[0]):
            continue
        if at >= first:
            judged[at - first] = row
        else:
            current[at] = replaced[at] = row
    rows = np.array(judged, dtype=JUDGE_ROW)
    return JudgedPage(rows, ids, replaced, bad_scores, pairwise, inconsistent)


def _row(rows: np.ndarray, i: int) -> _JudgeRow:
    r = rows[i]
    return (float(r["time"]), float(r["score"]), float(r["candidate"]), float(r["control"]),
            int(r["category"]), int(r["scorer"]))  # fmt: skip


def _codes(categories: list[str], scorers: list[str], names: Names) -> dict[str, int]:
    """Each name's code, interned in the order judge_row interns them (each kept verdict's
    category, then its scorer) when some name is new."""
    seen = set(categories) | set(scorers)
    if all(names.known(name) for name in seen):
        return {name: names.index(name) for name in seen}
    order = dict.fromkeys(x for pair in zip(categories, scorers, strict=True) for x in pair)
    return {name: names.index(name) for name in order}


def fold_verdict_columns(
    cols: VerdictColumns, stored: Stored, names: Names, first: int
) -> JudgedPage:
    """The join on a decoded page: what :func:`fold_verdict_records` gives on its records."""
    keep = ~cols.refused & ~np.isnan(cols.scores)
    pairwise = keep & (np.array(cols.scorers, dtype=object) == PAIRWISE)
    at = np.flatnonzero(keep)
    every = at.size == keep.size
    pids = cols.pair_ids if every else [cols.pair_ids[i] for i in at]
    scorers = cols.scorers if every else [cols.scorers[i] for i in at]
    categories = cols.categories if every else [cols.categories[i] for i in at]
    code = _codes(categories, scorers, names)
    rows = np.empty(at.size, dtype=JUDGE_ROW)
    rows["time"] = cols.times[at]
    rows["score"] = cols.scores[at] + 0.0  # ``verdict_score(v) or 0.0``: -0.0 becomes 0.0
    rows["candidate"] = cols.candidate[at]
    rows["control"] = cols.control[at]
    rows["category"] = [code[c] for c in categories]
    rows["scorer"] = [code[s] for s in scorers]
    counts = Counter(pids)
    special = {p for p, c in counts.items() if c > 1} | (stored.keys() & counts.keys())
    new = np.ones(at.size, dtype=bool)
    source = np.arange(at.size)  # the kept verdict whose row each new row ends up with
    replaced: dict[int, _JudgeRow] = {}
    if special:
        winner: dict[str, int] = {}  # pair id -> kept index its new row holds now
        firsts: dict[str, int] = {}
        current: dict[int, _JudgeRow] = {}
        for i, pid in enumerate(pids):
            if pid not in special:
                continue
            if pid in stored:
                new[i] = False
                place, row = stored[pid]
                old = current.setdefault(place, row)
                if outranks(scorers[i], float(rows["time"][i]), names.names[old[5]], old[0]):
                    current[place] = replaced[place] = _row(rows, i)
                continue
            if pid not in winner:
                winner[pid] = firsts[pid] = i
                continue
            new[i] = False
            held = winner[pid]
            old_scorer = names.names[int(rows["scorer"][held])]
            if outranks(scorers[i], float(rows["time"][i]), old_scorer, float(rows["time"][held])):
                winner[pid] = i
        for pid, i in firsts.items():
            source[i] = winner[pid]
    kept = source[new]
    new_ids = [pids[i] for i in np.flatnonzero(new)]
    return JudgedPage(
        rows=rows[kept],
        ids=dict(zip(new_ids, range(first, first + len(new_ids)), strict=True)),
        replaced=replaced,
        bad_scores=int(np.count_nonzero(cols.refused)),
        pairwise=int(np.count_nonzero(pairwise)),
        inconsistent=int(np.count_nonzero(pairwise & cols.inconsistent)),
    )
