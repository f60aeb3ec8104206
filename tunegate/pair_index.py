"""The pair browser's index: one sorted set of pair stream ids per filter value, kept from a cursor.

A filter that rarely matches made the console read and decode thousands of pairs per page
(proxy/console/browse.py's scan). With this index a filtered page costs O(page): the browser walks
the smallest matching set newest first, tests each member against the other filters' sets
(ZMSCORE, no decoding) and reads only the pairs it shows. Per experiment, under its
``{experiment}`` hash tag (one Redis Cluster slot, so a MULTI/EXEC holds it all), keys.pair_index:

- ``meta`` (hash): the last stream id folded of ``pairs`` and ``verdicts``, and ``sets``, the
  filter sets ever written (a JSON list; categories are task labels, few);
- ``c:<category>``, ``w:<winner>``, ``disagree``, ``errors`` (sorted sets, every score 0): the
  matching pairs' stream ids written fixed width (:func:`lex`), so member order is stream order and
  a stream id bound (a page's cursor, a time filter: stream ids are milliseconds) is a lex bound;
- ``state`` (hash): pair id -> its primary verdict (scorer, time, winner, as
  browse.PairRow.primary picks it) and its verdicts' stream ids, so a late verdict moves the pair
  between winner sets and a page reads exactly its rows' verdicts, wherever in the stream;
- ``order`` (sorted set): ``"<lex id> <pair id>"`` of every indexed pair, to trim ``state``.

Memory follows the pairs stream's retention (tunegate/retention.py, the one place it is set):
each fold drops every entry older than the stream's first id, so the index holds what the stream
holds (python -m bench.console_index reports the bytes per pair). No key per request is written.

A fold (:meth:`PairIndex.fold_page`) reads at most ``page`` entries of each stream after its
cursors and writes the sets, states and cursors in one MULTI/EXEC under WATCH of ``meta`` (the
pattern of analysis/evidence_store.py): a folder killed anywhere leaves the whole page or none,
two folders cannot both commit one page, and any later folder resumes from the cursors. Verdicts
are read before the pairs and folded only once the pairs are read to their end, so a verdict's
pair is always indexed before it (a verdict for a trimmed or unreadable pair is dropped).

Who folds, so that no process has to be started for it: the controller's loop after each look
(analysis/controller.py: it already runs wherever decisions are made, off the proxy's event loop),
and the console before each filtered page, at most a few pages (proxy/console/browse.py), which
covers what arrived since the controller's last look; when the index is further behind than
that (no controller running, a burst) the page falls back to the bounded scan and says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from tunegate import keys
from tunegate.errors import RecordError
from tunegate.records import Pair, Verdict, decode_pair, decode_verdict
from tunegate.redis import store_errors

__all__ = [
    "CHUNK",
    "PAIRWISE",
    "PairIndex",
    "errored",
    "lex",
    "page_ids",
    "rank",
    "set_parts",
    "stream_id",
    "verdict_ids",
]

PAIRWISE = "pairwise"
CHUNK = 500  # members a page reads from its driving set per round trip
_SEQ_MAX = 2**64 - 1
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_RankKey = tuple[bool, str, float]


def rank(verdict: Verdict) -> _RankKey:
    """Sort key of a pair's verdicts: the first is its primary (pairwise, else by scorer name)."""
    return (verdict.scorer != PAIRWISE, verdict.scorer, -verdict.time)


def errored(pair: Pair | None) -> bool:
    """An unreadable pair, or one whose arm is missing or failed."""
    if pair is None:
        return True
    return any(r is None or not r.ok for r in (pair.control, pair.candidate))


def lex(entry_id: str | bytes, *, seq: int = 0) -> str:
    """A stream id written fixed width (``seq`` when it has none), ordered as the stream orders."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, part = text.partition("-")
    return f"{int(ms):020d}-{int(part) if part else seq:020d}"


def stream_id(member: str | bytes) -> str:
    """The stream id of an index member (the inverse of :func:`lex`)."""
    text = member.decode() if isinstance(member, bytes) else member
    ms, _, part = text.split(" ", 1)[0].partition("-")
    return f"{int(ms)}-{int(part)}"


def set_parts(
    category: str | None, winner: str | None, disagreement: bool, errors: bool
) -> list[str]:
    """The filter sets a query must intersect (empty: no filter the index serves)."""
    parts = [f"c:{category}"] if category is not None else []
    parts += [f"w:{winner}"] if winner is not None else []
    parts += ["disagree"] if disagreement else []
    return parts + (["errors"] if errors else [])


@dataclass
class _State:
    """One pair's entry in ``state``: its primary verdict and its verdicts' stream ids."""

    member: str
    scorer: str | None = None  # the primary's; None: not judged
    time: float = 0.0
    winner: str | None = None
    verdicts: list[str] = field(default_factory=list)
    disagree: bool = False

    def dump(self) -> bytes:
        return orjson.dumps(
            [self.member, self.scorer, self.time, self.winner, self.verdicts, self.disagree]
        )

    @classmethod
    def load(cls, raw: bytes) -> _State:
        member, scorer, time, winner, verdicts, disagree = orjson.loads(raw)
        return cls(member, scorer, time, winner, verdicts, disagree)

    def add(self, verdict_id: str, verdict: Verdict) -> None:
        self.verdicts.append(verdict_id)
        self.disagree = self.disagree or verdict.inconsistent
        current = (self.scorer != PAIRWISE, self.scorer or "", -self.time)
        if self.scorer is None or rank(verdict) < current:  # ties: the earlier stays primary
            self.scorer, self.time = verdict.scorer, verdict.time
            self.winner = verdict.winner.value if verdict.winner is not None else None


_NewPair = tuple[str, str | None, str | None, bool]  # member, pair id, category, errored


def _parse(pairs: _Entries, verdicts: _Entries) -> tuple[list[_NewPair], list[tuple[str, Verdict]]]:
    """Decode a page (run in a thread: pydantic on a page of pairs takes tens of ms)."""
    out: list[_NewPair] = []
    for entry_id, fields in pairs:
        try:
            pair = decode_pair(fields)
        except RecordError:
            out.append((lex(entry_id), None, None, True))
            continue
        out.append((lex(entry_id), pair.id, pair.category, errored(pair)))
    judged: list[tuple[str, Verdict]] = []
    for entry_id, fields in verdicts:
        try:
            judged.append((entry_id.decode(), decode_verdict(fields)))
        except RecordError:
            continue
    return out, judged


class PairIndex:
    """Folds one experiment's pairs and verdicts streams into the filter sets, a page at a time."""

    def __init__(self, client: aioredis.Redis, experiment: str, *, page: int = 1000) -> None:
        if page < 1:
            raise ValueError("page must be at least 1")
        self.client = client
        self.experiment = experiment
        self.page = page
        self._meta = keys.pair_index(experiment, "meta")

    def _key(self, part: str) -> str:
        return keys.pair_index(self.experiment, part)

    async def catch_up(self, max_pages: int | None = None) -> bool:
        """Fold until both streams are read to their end (True), or ``max_pages`` folds were not
        enough (False: the index is behind)."""
        folds = 0
        while max_pages is None or folds < max_pages:
            if not await self.fold_page():
                return True
            folds += 1
        return False

    async def fold_page(self) -> bool:
        """Fold at most ``page`` entries of each stream in one transaction; whether more remain."""
        with store_errors("fold the pair index"):
            while True:
                async with self.client.pipeline(transaction=True) as pipe:
                    try:
                        return await self._fold(pipe)
                    except WatchError:
                        continue  # another folder committed first: read again

    async def _fold(self, pipe: aioredis.client.Pipeline) -> bool:
        e = self.experiment
        await pipe.watch(self._meta)
        raw = cast(dict[bytes, bytes], await pipe.hgetall(self._meta))
        meta = {k.decode(): v.decode() for k, v in raw.items()}
        after = {s: f"({meta[s]}" if meta.get(s) else "-" for s in ("pairs", "verdicts")}
        # verdicts first: each one's pair was written before it, so it is in the pairs read next
        verdicts = cast(
            _Entries, await pipe.xrange(keys.verdicts(e), min=after["verdicts"], count=self.page)
        )
        pairs = cast(
            _Entries, await pipe.xrange(keys.pairs(e), min=after["pairs"], count=self.page)
        )
        deferred = len(pairs) == self.page and bool(verdicts)
        if deferred:
            verdicts = []  # their pairs may lie past this page: folded once the pairs are all in
        trimmed = await self._trimmed(pipe, meta.get("pairs") or "0")
        if not pairs and not verdicts and not trimmed:
            return False
        new_pairs, judged = await asyncio.to_thread(_parse, pairs, verdicts)
        states = {pid: _State(member) for member, pid, _, _ in new_pairs if pid is not None}
        before = await self._stored(pipe, sorted({v.pair_id for _, v in judged} - states.keys()))
        states |= {pid: _State.load(s.dump()) for pid, s in before.items()}  # copies to change
        touched: set[str] = set()
        for verdict_id, verdict in judged:
            found = states.get(verdict.pair_id)
            if found is not None:  # else a trimmed or unreadable pair's verdict
                found.add(verdict_id, verdict)
                touched.add(verdict.pair_id)
        sets: list[str] = orjson.loads(meta.get("sets", "[]"))
        writes = _Writes(self, sets)
        writes.pairs(new_pairs)
        writes.states(states, before, touched)
        writes.trim(trimmed)
        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves multi() unannotated
        writes.queue(pipe)
        update = {"sets": orjson.dumps(sets).decode()}
        update |= {"pairs": pairs[-1][0].decode()} if pairs else {}
        update |= {"verdicts": verdicts[-1][0].decode()} if verdicts else {}
        pipe.hset(self._meta, mapping=update)  # type: ignore[arg-type]  # always: it is WATCHed
        await pipe.execute()
        return len(pairs) == self.page or deferred or len(verdicts) == self.page or bool(trimmed)

    async def _trimmed(self, pipe: aioredis.client.Pipeline, cursor: str) -> list[bytes]:
        """Up to a page of ``order`` members, oldest first, that the pairs stream no longer has."""
        first = cast(_Entries, await pipe.xrange(keys.pairs(self.experiment), count=1))
        floor = lex(first[0][0]) if first else lex(cursor, seq=_SEQ_MAX)  # empty: all folded go
        return cast(
            list[bytes],
            await pipe.zrange(
                self._key("order"), "-", f"({floor}", bylex=True, offset=0, num=self.page
            ),
        )

    async def _stored(self, pipe: aioredis.client.Pipeline, wanted: list[str]) -> dict[str, _State]:
        if not wanted:
            return {}
        stored = cast(list[bytes | None], await pipe.hmget(self._key("state"), wanted))
        return {pid: _State.load(raw) for pid, raw in zip(wanted, stored, strict=True) if raw}


@dataclass
class _Writes:
    """The writes of one fold, gathered per key so the MULTI holds a few commands, not a few
    per pair (redis-py parses every queued reply: per-pair commands made the fold 5x slower)."""

    index: PairIndex
    sets: list[str]
    added: dict[str, dict[str, int]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)
    written: dict[str, bytes] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    trim_to: str | None = None

    def add(self, part: str, member: str) -> None:
        if part not in self.sets:
            self.sets.append(part)
        self.added.setdefault(part, {})[member] = 0

    def pairs(self, new_pairs: list[_NewPair]) -> None:
        for member, pid, category, bad in new_pairs:
            self.added.setdefault("order", {})[f"{member} {pid or ''}"] = 0
            if category is not None:
                self.add(f"c:{category}", member)
            if bad:
                self.add("errors", member)

    def states(
        self, states: dict[str, _State], before: dict[str, _State], touched: set[str]
    ) -> None:
        """Each new or changed state, and the moves between winner sets its verdicts made."""
        for pid, state in states.items():
            old = before.get(pid)
            if old is None or pid in touched:
                self.written[pid] = state.dump()
            if old is not None and old.winner is not None and old.winner != state.winner:
                self.removed.setdefault(f"w:{old.winner}", []).append(state.member)
            if state.winner is not None and (old is None or old.winner != state.winner):
                self.add(f"w:{state.winner}", state.member)
            if state.disagree and (old is None or not old.disagree):
                self.add("disagree", state.member)

    def trim(self, trimmed: list[bytes]) -> None:
        """Drop the trimmed pairs: their states, and every set's members up to the newest."""
        if trimmed:
            self.gone = [pid for pid in (m.decode().split(" ", 1)[1] for m in trimmed) if pid]
            self.trim_to = f"[{lex(stream_id(trimmed[-1]))}~"  # '~' sorts after ' <pair id>'

    def queue(self, pipe: aioredis.client.Pipeline) -> None:
        """Queue the writes (inside the fold's MULTI); trims last, after this page's adds."""
        key = self.index._key
        for part, members in self.removed.items():
            pipe.zrem(key(part), *members)
        for part, mapping in self.added.items():
            pipe.zadd(key(part), mapping)
        if self.written:
            pipe.hset(key("state"), mapping=self.written)  # type: ignore[arg-type]  # invariant key
        if self.gone:
            pipe.hdel(key("state"), *self.gone)
        if self.trim_to is not None:
            for part in ("order", *self.sets):
                pipe.zremrangebylex(key(part), "-", self.trim_to)


def _bounds(cursor: str | None, since_ms: int | None, until_ms: int | None) -> tuple[str, str]:
    """The lex bounds (newest, oldest) of a page: below the cursor, within the time filter."""
    if cursor:
        high = f"({lex(cursor)}"
    elif until_ms is not None:
        high = f"[{lex(str(until_ms), seq=_SEQ_MAX)}"
    else:
        high = "+"
    return high, f"[{lex(str(since_ms))}" if since_ms is not None else "-"


async def page_ids(
    client: aioredis.Redis,
    experiment: str,
    parts: list[str],
    *,
    cursor: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 20,
    scan_limit: int = 100_000,
) -> tuple[list[str], str | None, int]:
    """Stream ids of up to ``limit`` pairs in every set of ``parts``, older than ``cursor``,
    newest first; the cursor to continue from (None: the end); how many members were tested.

    The walk follows the set with the fewest members in range and tests each against the others
    (ZMSCORE, a hash lookup in Redis), so a page costs O(page / how often the other filters
    match), at most ``scan_limit`` members."""
    if not parts:
        raise ValueError("parts: at least one filter set")
    high, low = _bounds(cursor, since_ms, until_ms)
    names = [keys.pair_index(experiment, p) for p in parts]
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zlexcount(name, low, high)
        counts = cast(list[int], await pipe.execute())
    drive = names[counts.index(min(counts))]
    others = [n for n in names if n != drive]
    kept: list[str] = []
    tested = 0
    while tested < scan_limit and min(counts) > 0:
        num = min(CHUNK, scan_limit - tested)
        members = cast(
            list[bytes],
            await client.zrange(drive, high, low, desc=True, bylex=True, offset=0, num=num),
        )
        tested += len(members)
        scores: list[list[float | None]] = []
        if others and members:
            async with client.pipeline(transaction=False) as pipe:
                for name in others:
                    pipe.zmscore(name, members)  # type: ignore[arg-type]  # bytes members
                scores = cast(list[list[float | None]], await pipe.execute())
        for i, member in enumerate(members):
            if all(s[i] is not None for s in scores):
                kept.append(stream_id(member))
                if len(kept) == limit:
                    return kept, kept[-1], tested
        if len(members) < num:
            return kept, None, tested
        high = f"({members[-1].decode()}"
    return kept, (stream_id(high[1:]) if tested else None), tested


async def verdict_ids(
    client: aioredis.Redis, experiment: str, pair_ids: list[str]
) -> dict[str, list[str]]:
    """Pair id -> the stream ids of its verdicts, in stream order (absent: not indexed)."""
    if not pair_ids:
        return {}
    raw = cast(
        list[bytes | None], await client.hmget(keys.pair_index(experiment, "state"), pair_ids)
    )
    return {pid: _State.load(r).verdicts for pid, r in zip(pair_ids, raw, strict=True) if r}
