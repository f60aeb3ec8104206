"""Pair, Verdict, Decision, Feedback and HumanLabel records: the only codec of stream fields.

Every record is a pydantic model with a ``schema_version``. In a Redis stream an entry has two
fields: ``v`` (the schema version) and ``json`` (the record). The proxy keeps upstream bodies as
the raw text it relayed (``ArmResult.body``); tunegate/responses.py parses that text.

Versions: every record is at :data:`SCHEMA_VERSION` except the Pair, at
:data:`PAIR_SCHEMA_VERSION` = 2 since it carries each arm's token counts (``prompt_tokens``,
``completion_tokens``, ``total_tokens``, set by the proxy from the usage block), so the decision
path never parses a response body. A version-1 pair still decodes (its token fields are None and
analysis/evidence.py parses its body as before); an unknown version is refused.

A Pair's and a Verdict's entry also carry the outcome field ``o`` (tunegate/outcomes.py): the
values a decision reads, so the incremental evidence store reads neither bodies nor rationales.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import ClassVar, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunegate.errors import RecordError
from tunegate.outcomes import OUTCOME_FIELD, dump_outcome, pair_outcome, verdict_outcome

__all__ = [
    "PAIR_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "Action",
    "Arm",
    "ArmResult",
    "AuditEntry",
    "DeadLetter",
    "Decision",
    "Endpoint",
    "ExperimentState",
    "Feedback",
    "HumanLabel",
    "OfflineResult",
    "OrderVerdict",
    "Pair",
    "Stage",
    "Verdict",
    "Winner",
    "decode",
    "decode_audit",
    "decode_dead_letter",
    "decode_decision",
    "decode_feedback",
    "decode_human_label",
    "decode_offline_result",
    "decode_pair",
    "decode_verdict",
    "encode",
    "trusted",
]

SCHEMA_VERSION = 1
#: Version 2 added the per-arm token counts; version-1 pairs still decode.
PAIR_SCHEMA_VERSION = 2

#: A stream entry or hash as redis-py returns it (bytes) or as tests write it (str).
Fields = Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str]


class Arm(StrEnum):
    CONTROL = "control"
    CANDIDATE = "candidate"

    @property
    def other(self) -> Arm:
        return Arm.CANDIDATE if self is Arm.CONTROL else Arm.CONTROL


class Stage(StrEnum):
    SHADOW = "shadow"
    AB = "ab"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    PAUSED = "paused"


class Endpoint(StrEnum):
    CHAT = "chat.completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"


class Winner(StrEnum):
    CANDIDATE = "candidate"
    CONTROL = "control"
    TIE = "tie"


class Action(StrEnum):
    CONTINUE = "continue"
    START_AB = "start_ab"
    RAMP = "ramp"
    PROMOTE = "promote"
    STOP_EQUIVALENT = "stop_equivalent"
    ROLL_BACK = "roll_back"
    PAUSE = "pause"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)
    #: the versions :func:`decode` accepts for this record
    readable_versions: ClassVar[frozenset[int]] = frozenset({SCHEMA_VERSION})
    schema_version: int = SCHEMA_VERSION


class ArmResult(BaseModel):
    """What one arm answered: the raw body as relayed, its status and its timings."""

    model_config = ConfigDict(extra="forbid")
    upstream: str
    model: str
    stream: bool = False
    status: int | None = None  # HTTP status; None when no response arrived
    # None, or why the arm has no good answer: timeout, connect, reset (closed mid-exchange),
    # protocol (an answer the parser refuses), status (non-2xx), overloaded, cancelled, internal
    error: str | None = None
    body: str = ""  # raw JSON body, or the raw SSE event text for streams
    body_truncated: bool = False
    latency_s: float | None = None
    ttft_s: float | None = None  # streams: time to first content chunk
    itl_mean_s: float | None = None  # streams: mean inter-token (inter-chunk) latency
    itl_max_s: float | None = None
    # the usage block's counts, set by the proxy when it builds the pair (None: none reported)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


class Pair(_Record):
    """One request and both arms' answers (or the reason an arm has none)."""

    readable_versions: ClassVar[frozenset[int]] = frozenset({1, PAIR_SCHEMA_VERSION})
    schema_version: int = PAIR_SCHEMA_VERSION
    id: str
    experiment: str
    time: float = Field(default_factory=time.time)
    endpoint: Endpoint
    request: str  # the client's request body as JSON text; never headers or credentials
    served_arm: Arm
    control: ArmResult | None = None
    candidate: ArmResult | None = None
    mirror_skipped: str | None = None  # reason the other arm got no copy
    user_key_hash: str | None = None
    category: str | None = None
    reference: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def arm(self, arm: Arm) -> ArmResult | None:
        return self.control if arm is Arm.CONTROL else self.candidate

    def request_json(self) -> dict[str, object]:
        try:
            value = orjson.loads(self.request)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"pair {self.id}: request is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise RecordError(f"pair {self.id}: request is not a JSON object")
        return value


class OrderVerdict(BaseModel):
    """One judge call: the pair shown in one order, its raw output and parsed score."""

    model_config = ConfigDict(extra="forbid")
    order: Literal["candidate_first", "control_first"]
    raw: str
    label: str | None = None  # e.g. "A>>B", "A>B", "A=B", "B>A", "B>>A"
    candidate_score: float | None = None
    cached: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0


class Verdict(_Record):
    """One scorer's judgement of one pair."""

    pair_id: str
    experiment: str
    scorer: str
    judge_version: str  # scorer version or judge model + template hash
    time: float = Field(default_factory=time.time)
    winner: Winner | None = None
    score: float | None = None  # candidate score in [0, 1]; 0.5 is a tie
    arm_scores: dict[Arm, float] | None = None  # per-arm scores for programmatic scorers
    category: str | None = None
    reason: str | None = None  # identical, candidate_error, control_error, judged, scored
    orders: list[OrderVerdict] = Field(default_factory=list)
    inconsistent: bool = False
    judge_model: str | None = None
    template_hash: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    rationale: str | None = None
    rationale_truncated: bool = False
    input_truncated: bool = False
    latency_s: float = 0.0
    served_arm: Arm | None = None
    user_key_hash: str | None = None


class Decision(_Record):
    """What the decision engine concluded, with its evidence and a reason a person can read."""

    experiment: str
    time: float = Field(default_factory=time.time)
    action: Action
    stage_before: Stage
    stage_after: Stage
    weight_before: float = 0.0
    weight_after: float = 0.0
    evidence: dict[str, object] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    reason: str = ""
    samples_needed: int | None = None
    applied: bool = False
    needs_approval: bool = False
    fence: int | None = None  # the deciding controller's lease token (tunegate/lease.py)


class Feedback(_Record):
    """A user's feedback on one served response, posted by the application."""

    pair_id: str
    experiment: str
    time: float = Field(default_factory=time.time)
    arm: Arm
    value: float
    user_key_hash: str | None = None
    label: str | None = None


class HumanLabel(_Record):
    """A reviewer's pick of the better answer of one pair (or a tie), made in the console.

    ``sample`` names the random sample the console drew it from, so a labelled share is a random
    draw of the judged pairs (what the judge-corrected estimate assumes).
    """

    pair_id: str
    experiment: str
    time: float = Field(default_factory=time.time)
    winner: Winner
    pair_stream_id: str = ""  # the pair's entry id in the pairs stream, to read it back by id
    reviewer: str = Field(default="", max_length=200)
    sample: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=2000)


R = TypeVar("R", bound="_Record")
M = TypeVar("M", bound=BaseModel)

_setattr = object.__setattr__  # pydantic's model_construct sets its slots the same way


def trusted(cls: type[M], **values: object) -> M:
    """A ``cls`` record from every one of its fields, each of its exact type, unvalidated.

    What ``BaseModel.model_construct`` does for these records (no aliases, no extra fields, no
    private attributes, no post-init), without its loop over every field's aliases and default:
    the proxy builds three records a request (two ArmResults and the Pair), and that loop cost
    about 590 bytecodes each, more than the rest of building the pair. Every field must be given
    (TypeError otherwise): a field added to a record fails here, not later in the serializer.
    tests/test_contract.py checks it against model_construct.
    """
    if values.keys() != cls.__pydantic_fields__.keys():
        missing = sorted(set(cls.__pydantic_fields__).symmetric_difference(values))
        raise TypeError(f"{cls.__name__}: trusted() takes every field exactly; not {missing}")
    record = cls.__new__(cls)
    _setattr(record, "__dict__", values)
    _setattr(record, "__pydantic_fields_set__", set(values))
    _setattr(record, "__pydantic_extra__", None)
    _setattr(record, "__pydantic_private__", None)
    return record


class DeadLetter(_Record):
    """A pair a scorer could not score, with the reason (a bounded label) and the raw judge output.

    ``pair`` is the original pair JSON, or the raw stream fields as JSON when they did not decode.
    """

    experiment: str
    pair_id: str
    scorer: str = ""
    judge_version: str = ""
    reason: str
    error: str = Field(default="", max_length=2000)
    raw: str = Field(default="", max_length=20000)
    pair: str = ""
    time: float = Field(default_factory=time.time)


class OfflineResult(_Record):
    """The offline gate's answer for one candidate version (``tunegate eval --record``)."""

    experiment: str
    candidate_version: str
    time: float = Field(default_factory=time.time)
    outcome: Literal["pass", "fail", "inconclusive"]
    reasons: list[str] = Field(default_factory=list)
    regressions: list[str] = Field(default_factory=list)
    items_needed: int | None = None
    report_sha256: str = ""  # digest of the report.json it summarises


class ExperimentState(BaseModel):
    """The live state of one experiment, kept in the ``keys.state`` hash; it overrides the config.

    ``version`` increases by one on every change, so proxies can tell a newer state cheaply.
    """

    model_config = ConfigDict(extra="forbid")
    stage: Stage
    ab_weight: float = Field(default=0.0, ge=0, le=1)
    mirror_rate: float = Field(default=1.0, ge=0, le=1)
    version: int = 0
    updated_by: str = "config"
    updated_at: float = Field(default_factory=time.time)

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json").items()}

    @classmethod
    def from_hash(cls, fields: Fields) -> ExperimentState:
        raw = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RecordError(f"experiment state: {exc.errors()[0]['msg']}") from exc


class AuditEntry(_Record):
    """One change of an experiment's state: who made it, when, why, the state before and after."""

    experiment: str
    time: float
    actor: str
    reason: str
    before: ExperimentState | None
    after: ExperimentState
    # set when the change was to the definition (the config file seeding it), not to the state
    definition_version: int | None = None


def encode(record: _Record) -> dict[str, bytes]:
    """Stream fields for one record; a Pair and a Verdict also get their outcome field."""
    fields = {"v": str(record.schema_version).encode(), "json": record.model_dump_json().encode()}
    if isinstance(record, Pair) and record.schema_version >= PAIR_SCHEMA_VERSION:
        fields[OUTCOME_FIELD] = dump_outcome(pair_outcome(record))
    elif isinstance(record, Verdict):
        fields[OUTCOME_FIELD] = dump_outcome(verdict_outcome(record))
    return fields


def decode(fields: Fields, model: type[R]) -> R:
    """Decode stream fields into ``model``; raises RecordError on anything else."""
    raw = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
    version = raw.get("v")
    payload = raw.get("json")
    if version is None or payload is None:
        raise RecordError(f"{model.__name__}: stream entry lacks the 'v' or 'json' field")
    version_text = version.decode() if isinstance(version, bytes) else version
    if version_text not in {str(v) for v in model.readable_versions}:
        raise RecordError(f"{model.__name__}: unknown schema version {version_text!r}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise RecordError(f"{model.__name__}: {exc.errors()[0]['msg']}") from exc


def decode_pair(fields: Fields) -> Pair:
    return decode(fields, Pair)


def decode_verdict(fields: Fields) -> Verdict:
    return decode(fields, Verdict)


def decode_decision(fields: Fields) -> Decision:
    return decode(fields, Decision)


def decode_feedback(fields: Fields) -> Feedback:
    return decode(fields, Feedback)


def decode_human_label(fields: Fields) -> HumanLabel:
    return decode(fields, HumanLabel)


def decode_dead_letter(fields: Fields) -> DeadLetter:
    return decode(fields, DeadLetter)


def decode_offline_result(fields: Fields) -> OfflineResult:
    return decode(fields, OfflineResult)


def decode_audit(fields: Fields) -> AuditEntry:
    return decode(fields, AuditEntry)
