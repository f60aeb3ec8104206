"""Human labels from the console as calibration pairs: ``tunegate judge calibrate --labels EXP``.

Each HumanLabel names its pair's entry in the pairs stream, so a pair is read back by id (one
XRANGE each, whatever the stream's length). The candidate's answer is ``output_1`` and the
control's ``output_2``, as judge/calibrate.py's swap convention expects; a tie label, a pair
whose arm failed or whose answer does not parse, and a pair trimmed from the stream are counted,
not judged (calibrate's labels are 1 or 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import redis.asyncio as aioredis

from judge.calibrate import LabelledPair
from judge.prompts import input_from_request
from tunegate import keys
from tunegate.errors import RecordError
from tunegate.records import Arm, HumanLabel, Pair, Winner, decode_human_label, decode_pair
from tunegate.redis import store_errors
from tunegate.responses import parse_response

__all__ = ["LabelledSet", "labelled_pairs"]

MAX_LABELS = 100_000
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class LabelledSet:
    pairs: list[LabelledPair] = field(default_factory=list)
    ties: int = 0
    unusable: int = 0  # pair gone, an arm failed, an answer that does not parse
    unreadable: int = 0  # label entries that did not decode


def _texts(pair: Pair) -> tuple[str, str] | None:
    out = []
    for arm in (Arm.CANDIDATE, Arm.CONTROL):
        result = pair.arm(arm)
        if result is None or not result.ok:
            return None
        try:
            out.append(parse_response(result).text)
        except RecordError:
            return None
    return out[0], out[1]


async def _pair(redis: aioredis.Redis, experiment: str, label: HumanLabel) -> Pair | None:
    if not label.pair_stream_id:
        return None
    sid = label.pair_stream_id
    entries = cast(_Entries, await redis.xrange(keys.pairs(experiment), sid, sid, count=1))
    if not entries:
        return None
    try:
        pair = decode_pair(entries[0][1])
    except RecordError:
        return None
    return pair if pair.id == label.pair_id else None


async def labelled_pairs(redis: aioredis.Redis, experiment: str) -> LabelledSet:
    """The experiment's labelled pairs (a pair labelled twice keeps its newest label)."""
    found = LabelledSet()
    newest: dict[str, HumanLabel] = {}
    with store_errors("read labels"):
        entries = cast(_Entries, await redis.xrevrange(keys.labels(experiment), count=MAX_LABELS))
        for _, fields in entries:
            try:
                label = decode_human_label(fields)
            except RecordError:
                found.unreadable += 1
                continue
            newest.setdefault(label.pair_id, label)
        for label in newest.values():
            if label.winner is Winner.TIE:
                found.ties += 1
                continue
            pair = await _pair(redis, experiment, label)
            texts = _texts(pair) if pair is not None else None
            if pair is None or texts is None:
                found.unusable += 1
                continue
            try:
                question = input_from_request(pair.request_json()).question
            except RecordError:
                question = pair.request
            label_n = 1 if label.winner is Winner.CANDIDATE else 2
            found.pairs.append(LabelledPair(question, texts[0], texts[1], label_n))
    return found
