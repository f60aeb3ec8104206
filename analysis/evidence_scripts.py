"""The evidence store's Lua scripts: a fold's reads (the meta hash and a page of one field of each
stream as one string), the stored rows of a page's pair ids, and the pair ids of new judged
rows, each in one command.

A page of 2,000 entries read as 2,000 replies, or a ZADD of 2,000 pair ids packed argument by
argument, costs the fold more Python time than everything else it does with them. These scripts
move that to Redis, which loops in C and Lua: each takes or returns many values as one byte
string joined by ``0xFF`` (analysis/evidence_pages.py), a byte that UTF-8 text, hence no pair id
and no JSON value, ever holds. Every script names its keys, all under one experiment's hash tag,
so it runs on a Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from analysis.evidence_pages import SEPARATOR

__all__ = ["Read", "project", "read_pages", "remember", "stored_rows"]

_Pipe = aioredis.client.Pipeline
_Projected = list[tuple[bytes, bytes]]  # (entry id, the projected field or b"")

_SPLIT = """
local function split(blob)
  local out, pos = {}, 1
  while true do
    local stop = string.find(blob, '\\255', pos, true)
    if stop == nil then out[#out + 1] = string.sub(blob, pos) return out end
    out[#out + 1] = string.sub(blob, pos, stop - 1)
    pos = stop + 1
  end
end
"""

# One fold's reads, after WATCH of the meta hash KEYS[1]: {the hash (HGETALL), then per stream
# KEYS[s] {range start, count, last id, the values of its field joined by 0xFF}}. A stream's
# cursor is the hash field ARGV[2s - 1] (none: from the start), its projected field ARGV[2s]
# ('' for none: count and last id only); at most ARGV[1] entries each, read ARGV[2] at a time
# (a few hundred: Redis converts one big XRANGE reply into Lua values much more slowly).
_READ = """
local count, step = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = redis.call('HGETALL', KEYS[1])
local meta = {}
for i = 1, #raw, 2 do meta[raw[i]] = raw[i + 1] end
local out = {raw}
for s = 2, #KEYS do
  local cursor, field = meta[ARGV[2 * s - 1]], ARGV[2 * s]
  local start = (cursor and cursor ~= '') and ('(' .. cursor) or '-'
  local after, values, n, last = start, {}, 0, ''
  while n < count do
    local entries = redis.call('XRANGE', KEYS[s], after, '+', 'COUNT', math.min(step, count - n))
    local m = #entries
    if m == 0 then break end
    if field ~= '' then
      for i = 1, m do
        local fields, value = entries[i][2], ''
        for j = 1, #fields, 2 do
          if fields[j] == field then value = fields[j + 1] break end
        end
        values[n + i] = value
      end
    end
    n = n + m
    last = entries[m][1]
    after = '(' .. last
  end
  out[s] = {start, n, last, table.concat(values, '\\255')}
end
return out
"""
_STEP = 250

# XRANGE from ARGV[1] to ARGV[2] keeping of each entry its id and the ARGV[3] field ('' where it
# has none): the record-by-record read of a page that did not decode at once.
_PROJECT = """
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2])
local out = {}
for i, entry in ipairs(entries) do
  local fields, value = entry[2], ''
  for j = 1, #fields, 2 do
    if fields[j] == ARGV[3] then value = fields[j + 1] break end
  end
  out[i] = {entry[1], value}
end
return out
"""

# Of the pair ids in ARGV[1], those in the sorted set KEYS[1]: {id, its row's ARGV[2] bytes of
# KEYS[2], the row number, ...}. ZMSCORE in chunks: Lua's unpack has a stack limit.
_STORED = (
    _SPLIT
    + """
local ids, size, out = split(ARGV[1]), tonumber(ARGV[2]), {}
for i = 1, #ids, 1000 do
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
  for k = 1, #scores do
    if scores[k] then
      local at = tonumber(scores[k])
      out[#out + 1] = ids[i + k - 1]
      out[#out + 1] = redis.call('GETRANGE', KEYS[2], at * size, (at + 1) * size - 1)
      out[#out + 1] = scores[k]
    end
  end
end
return out
"""
)

# ZADD the pair ids of ARGV[2] at rows ARGV[1], ARGV[1] + 1, ...; keep the newest ARGV[3].
_REMEMBER = (
    _SPLIT
    + """
local ids, first = split(ARGV[2]), tonumber(ARGV[1])
for i = 1, #ids, 500 do
  local args = {}
  for k = i, math.min(i + 499, #ids) do
    args[#args + 1] = string.format('%d', first + k - 1)
    args[#args + 1] = ids[k]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
return #ids
"""
)


@dataclass
class Read:
    """One stream's page: the range start it was read from, its entries, the last entry's id,
    their projected field values joined."""

    after: str
    n: int
    last: bytes
    values: bytes


async def read_pages(
    pipe: _Pipe, meta: str, streams: list[tuple[str, str, str]], count: int
) -> tuple[dict[bytes, bytes], list[Read]]:
    """The meta hash and, per (stream, its cursor's field in the hash, projected field), at
    most ``count`` entries after the cursor: one round trip for everything a fold reads."""
    args = [x for _, cursor, field in streams for x in (cursor, field)]
    keys = [meta, *(stream for stream, _, _ in streams)]
    reply = cast(
        list[list[Any]],
        await pipe.eval(_READ, len(keys), *keys, str(count), str(_STEP), *args),
    )
    raw = reply[0]
    hash_ = dict(zip(raw[::2], raw[1::2], strict=True))
    reads = [Read(after.decode(), n, last, values) for after, n, last, values in reply[1:]]
    return hash_, reads


async def project(pipe: _Pipe, stream: str, after: str, last: bytes, field: str) -> _Projected:
    """Each entry's id and ``field`` value from ``after`` to ``last``: a page read again."""
    return cast(_Projected, await pipe.eval(_PROJECT, 1, stream, after, last, field))


async def stored_rows(
    pipe: _Pipe, judged: str, rows: str, pair_ids: list[str], size: int
) -> dict[str, tuple[int, bytes]]:
    """The row number and row bytes of each of ``pair_ids`` the sorted set ``judged`` holds."""
    if not pair_ids:
        return {}
    blob = SEPARATOR.join(map(str.encode, pair_ids))
    reply = cast(list[bytes], await pipe.eval(_STORED, 2, judged, rows, blob, str(size)))
    return {
        reply[i].decode(): (int(float(reply[i + 2])), reply[i + 1]) for i in range(0, len(reply), 3)
    }


def remember(pipe: _Pipe, judged: str, first: int, pair_ids: list[str], window: int) -> None:
    """Queue (inside MULTI) the rows ``first``, ``first + 1``, ... of ``pair_ids``."""
    blob = SEPARATOR.join(map(str.encode, pair_ids))
    pipe.eval(_REMEMBER, 1, judged, str(first), blob, str(window))
