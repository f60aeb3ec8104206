"""Pages of pairs from a stream of millions: id cursors, an index, never the whole stream.

A page filtered by category, winner, disagreement or errors is read from the pair index
(tunegate/pair_index.py): sorted sets of stream ids, so it reads only the pairs it shows and their
verdicts (by the ids the index keeps), whatever share of the stream matches. The scan below
answers the rest (no such filter: every pair in the time range is kept) and is the fallback when
the index is behind.

The scan walks the pairs stream newest first with XREVRANGE from a cursor (a stream id), in
batches, keeping the pairs the filters let through, and stops at ``limit`` kept pairs or after
``scan_limit`` read ones: the page then carries the cursor to continue from, so a filter that
matches nothing never reads more than ``scan_limit`` entries per request. Time filters become
the stream-id bounds (ids are milliseconds), so they cost nothing.

The judge writes verdicts to their own stream after the pair; a batch's verdicts are read
forward from the batch's oldest pair id in chunks, until every pair of the batch has one and a
further chunk adds none, at most ``VERDICT_SCAN`` entries. A verdict written more than that many
entries later (a judge lagging far behind) is not shown; the pair reads as not yet judged.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis

from tunegate import keys, label_sample, pair_index
from tunegate.errors import RecordError
from tunegate.records import (
    HumanLabel,
    Pair,
    Verdict,
    Winner,
    decode_human_label,
    decode_pair,
    decode_verdict,
)

__all__ = [
    "SAMPLES",
    "SAMPLE_RESERVOIR",
    "SAMPLE_TIME",
    "Entries",
    "Filters",
    "Page",
    "PairRow",
    "draw_unlabelled",
    "indexed_page",
    "labelled_ids",
    "one_pair",
    "page",
    "scan_page",
]

BATCH = 100
VERDICT_SCAN = 5000
VERDICT_CHUNK = 200
LABEL_SCAN = 100_000
PAIRWISE = pair_index.PAIRWISE
CATCH_UP_PAGES = 3  # index folds a page may run before answering (each: up to 1,000 per stream)
SAMPLE_RESERVOIR = "console-uniform-pairs"  # a label's sample: drawn from the judge's reservoir
SAMPLE_TIME = "console-uniform-time"  # drawn at a uniform time (no reservoir yet)
SAMPLES = (SAMPLE_RESERVOIR, SAMPLE_TIME)
Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class PairRow:
    """One pair as the browser shows it, with every verdict on it (or why it did not decode)."""

    stream_id: str
    pair: Pair | None
    verdicts: list[Verdict] = field(default_factory=list)
    error: str | None = None

    @property
    def primary(self) -> Verdict | None:
        """The pairwise judge's verdict, else the first scorer's by name."""
        ranked = sorted(self.verdicts, key=pair_index.rank)
        return ranked[0] if ranked else None

    @property
    def winner(self) -> Winner | None:
        primary = self.primary
        return primary.winner if primary is not None else None

    @property
    def disagreement(self) -> bool:
        """The judge's two orders disagreed on some scorer."""
        return any(v.inconsistent for v in self.verdicts)

    @property
    def errored(self) -> bool:
        return pair_index.errored(self.pair)


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    winner: Winner | None = None  # "unjudged" pairs have none; see ``judged``
    disagreement: bool = False
    errors: bool = False
    since_ms: int | None = None
    until_ms: int | None = None

    @property
    def index_sets(self) -> list[str]:
        """The pair index's sets these filters intersect (none: every pair in the time range)."""
        winner = self.winner.value if self.winner is not None else None
        return pair_index.set_parts(self.category, winner, self.disagreement, self.errors)

    def keeps(self, row: PairRow) -> bool:
        if self.category is not None and (row.pair is None or row.pair.category != self.category):
            return False
        if self.winner is not None and row.winner is not self.winner:
            return False
        if self.disagreement and not row.disagreement:
            return False
        return not self.errors or row.errored


@dataclass
class Page:
    rows: list[PairRow]
    next_cursor: str | None  # the stream id to continue from (exclusive); None: the end
    scanned: int  # pairs read (the scan) or index members tested (the index)
    indexed: bool = False  # answered from the pair index (tunegate/pair_index.py)
    behind: bool = False  # the index was too far behind: answered by the bounded scan


def _id(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _row(stream_id: bytes, fields: dict[bytes, bytes]) -> PairRow:
    try:
        return PairRow(_id(stream_id), decode_pair(fields))
    except RecordError as exc:
        return PairRow(_id(stream_id), None, error=str(exc))


async def _attach_verdicts(redis: aioredis.Redis, experiment: str, rows: list[PairRow]) -> None:
    """Read verdicts forward from the rows' oldest pair, in chunks, until every pair has one and a
    further chunk adds none for them, or VERDICT_SCAN entries (a judge far behind) are read."""
    by_pair = {row.pair.id: row for row in rows if row.pair is not None}
    if not by_pair:
        return
    start = min(row.stream_id for row in rows)
    read = 0
    while read < VERDICT_SCAN:
        entries = cast(
            Entries,
            await redis.xrange(keys.verdicts(experiment), min=start, count=VERDICT_CHUNK),
        )
        read += len(entries)
        added = 0
        for _, fields in entries:
            try:
                verdict = decode_verdict(fields)
            except RecordError:
                continue
            row = by_pair.get(verdict.pair_id)
            if row is not None:
                row.verdicts.append(verdict)
                added += 1
        complete = all(row.verdicts for row in by_pair.values())
        if len(entries) < VERDICT_CHUNK or (complete and not added):
            return
        start = "(" + _id(entries[-1][0])


async def page(
    redis: aioredis.Redis,
    experiment: str,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 20,
    scan_limit: int = 2000,
) -> Page:
    """Up to ``limit`` pairs older than ``cursor`` that the filters keep, newest first.

    Filters the pair index serves (category, winner, disagreement, errors) are answered from it
    after a catch-up of at most CATCH_UP_PAGES folds, which covers what arrived since the
    controller's last fold (tunegate/pair_index.py says who folds); an index still behind after
    that answers by the bounded scan, as does a page with no such filter (it keeps every pair
    in its time range, so the scan reads only the page)."""
    if filters.index_sets and await pair_index.PairIndex(redis, experiment).catch_up(
        CATCH_UP_PAGES
    ):
        return await indexed_page(redis, experiment, filters, cursor=cursor, limit=limit)
    found = await scan_page(
        redis, experiment, filters, cursor=cursor, limit=limit, scan_limit=scan_limit
    )
    found.behind = bool(filters.index_sets)  # an index filter the index could not answer yet
    return found


async def indexed_page(
    redis: aioredis.Redis,
    experiment: str,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 20,
    scan_limit: int = 100_000,
) -> Page:
    """The page :func:`scan_page` would give, from the pair index as it stands (fold it first)."""
    ids, next_cursor, tested = await pair_index.page_ids(
        redis,
        experiment,
        filters.index_sets,
        cursor=cursor,
        since_ms=filters.since_ms,
        until_ms=filters.until_ms,
        limit=limit,
        scan_limit=scan_limit,
    )
    async with redis.pipeline(transaction=False) as pipe:
        for sid in ids:
            pipe.xrange(keys.pairs(experiment), sid, sid, count=1)
        found = cast(list[Entries], await pipe.execute())
    rows = [_row(*entries[0]) for entries in found if entries]  # none: trimmed since the fold
    known = {row.pair.id: row for row in rows if row.pair is not None}
    verdicts = await pair_index.verdict_ids(redis, experiment, list(known))
    wanted = [(pid, vid) for pid, vids in verdicts.items() for vid in vids]
    async with redis.pipeline(transaction=False) as pipe:
        for _, vid in wanted:
            pipe.xrange(keys.verdicts(experiment), vid, vid, count=1)
        read = cast(list[Entries], await pipe.execute())
    for (pid, _), entries in zip(wanted, read, strict=True):
        if entries:  # none: trimmed from the verdicts stream
            with contextlib.suppress(RecordError):
                known[pid].verdicts.append(decode_verdict(entries[0][1]))
    return Page(rows, next_cursor, tested, indexed=True)


async def scan_page(
    redis: aioredis.Redis,
    experiment: str,
    filters: Filters,
    *,
    cursor: str | None = None,
    limit: int = 20,
    scan_limit: int = 2000,
) -> Page:
    """Up to ``limit`` pairs older than ``cursor`` that the filters keep, newest first, by
    reading the stream: at most ``scan_limit`` pairs, each decoded with its verdicts."""
    upper = f"({cursor}" if cursor else (str(filters.until_ms) if filters.until_ms else "+")
    lower = str(filters.since_ms) if filters.since_ms is not None else "-"
    kept: list[PairRow] = []
    scanned = 0
    while True:
        count = min(BATCH, scan_limit - scanned)
        entries = cast(
            Entries, await redis.xrevrange(keys.pairs(experiment), upper, lower, count=count)
        )
        rows = [_row(sid, fields) for sid, fields in entries]
        await _attach_verdicts(redis, experiment, rows)
        for row in rows:
            scanned += 1
            if filters.keeps(row):
                kept.append(row)
            if len(kept) == limit:
                return Page(kept, row.stream_id, scanned)
        if len(entries) < count:
            return Page(kept, None, scanned)
        upper = f"({rows[-1].stream_id}"
        if scanned >= scan_limit:
            return Page(kept, rows[-1].stream_id, scanned)


async def one_pair(redis: aioredis.Redis, experiment: str, stream_id: str) -> PairRow | None:
    """The pair at ``stream_id`` with its verdicts; None when there is none."""
    entries = cast(
        Entries, await redis.xrange(keys.pairs(experiment), stream_id, stream_id, count=1)
    )
    if not entries:
        return None
    row = _row(*entries[0])
    await _attach_verdicts(redis, experiment, [row])
    return row


async def labelled_ids(redis: aioredis.Redis, experiment: str) -> dict[str, HumanLabel]:
    """Pair id -> its newest label (labels are few: a person makes each; at most LABEL_SCAN)."""
    entries = cast(Entries, await redis.xrevrange(keys.labels(experiment), count=LABEL_SCAN))
    out: dict[str, HumanLabel] = {}
    for _, fields in entries:
        try:
            label = decode_human_label(fields)
        except RecordError:
            continue
        out.setdefault(label.pair_id, label)
    return out


async def draw_unlabelled(
    redis: aioredis.Redis, experiment: str, rng: random.Random, *, tries: int = 20
) -> tuple[PairRow | None, str]:
    """A random judged, unlabelled pair, and how it was drawn (the label's ``sample``).

    Uniform over pairs: a stream id drawn from the reservoir the judge keeps as it judges
    (tunegate/label_sample.py), one read per try. A store whose reservoir is empty (pairs judged
    before it existed) falls back to a uniform time between the stream's first and last id,
    which is uniform in time, not in pairs (bursts are under-sampled). None when no try finds one.
    """
    done = await labelled_ids(redis, experiment)
    sampled, _ = await label_sample.members(redis, experiment)
    if sampled:
        labelled = {label.pair_stream_id for label in done.values()}
        left = [sid for sid in sampled if sid not in labelled]  # skipped without a read
        for stream_id in rng.sample(left, min(tries, len(left))):  # without replacement
            row = await one_pair(redis, experiment, stream_id)
            if row is None or row.pair is None or row.pair.id in done:
                continue
            if row.primary is not None:
                return row, SAMPLE_RESERVOIR
        return None, SAMPLE_RESERVOIR
    return await _draw_by_time(redis, experiment, rng, done, tries), SAMPLE_TIME


async def _draw_by_time(
    redis: aioredis.Redis,
    experiment: str,
    rng: random.Random,
    done: dict[str, HumanLabel],
    tries: int,
) -> PairRow | None:
    stream = keys.pairs(experiment)
    first = cast(Entries, await redis.xrange(stream, count=1))
    last = cast(Entries, await redis.xrevrange(stream, count=1))
    if not first or not last:
        return None
    low, high = (int(_id(e[0][0]).split("-")[0]) for e in (first, last))
    for _ in range(tries):
        at = rng.randint(low, high)
        entries = cast(Entries, await redis.xrange(stream, min=str(at), count=1))
        if not entries:
            continue
        row = _row(*entries[0])
        if row.pair is None or row.pair.id in done:
            continue
        await _attach_verdicts(redis, experiment, [row])
        if row.primary is not None:
            return row
    return None
