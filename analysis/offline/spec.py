"""The offline evaluation spec: arms, test sets, probes, decoding, metrics, thresholds, judge.

One YAML file (flags fill the common case, see cli/eval/). The control is the strongest
non-fine-tuned baseline: the base model with the production system prompt and few-shot examples.
A bare zero-shot base is compared only when ``control_kind: zero_shot`` says so, and the report
says which it was. Upstreams are named from the root settings' ``upstreams`` (any upstream the
proxy can reach); a spec may also define its own under ``upstreams`` (validated by the CLI as the
proxy's ``UpstreamConfig``, since this plane does not import the proxy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunegate.errors import ConfigError

__all__ = [
    "ArmSpec",
    "CodeSpec",
    "DecodingSpec",
    "EmbeddingSetSpec",
    "EvalSpec",
    "FewShot",
    "JudgeGateSpec",
    "ProbeSuiteSpec",
    "TestSetSpec",
    "ThresholdSpec",
    "load_spec",
]


class FewShot(BaseModel):
    """One worked example shown to an arm before the item: a user turn and the answer."""

    model_config = ConfigDict(extra="forbid")
    user: str
    assistant: str


class ArmSpec(BaseModel):
    """One side of the comparison: which upstream, the model name to send, its prompt."""

    model_config = ConfigDict(extra="forbid")
    upstream: str
    model: str | None = None  # None: the upstream's name
    system_prompt: str | None = None
    few_shot: list[FewShot] = Field(default_factory=list)

    @property
    def prompted(self) -> bool:
        return bool(self.system_prompt) or bool(self.few_shot)


class DecodingSpec(BaseModel):
    """Decoding parameters, shared by both arms (greedy by default, so a re-run is identical)."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=128, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None  # None: the spec's seed

    def body_fields(self, seed: int) -> dict[str, object]:
        """The request fields these parameters set."""
        fields: dict[str, object] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed if self.seed is not None else seed,
        }
        if self.stop:
            fields["stop"] = self.stop
        return fields


class TestSetSpec(BaseModel):
    """A generative test set (JSONL or CSV) and the metrics that score it.

    Rows hold ``prompt`` or ``messages``, ``reference``, ``category``, ``labels``; code items a
    ``tests`` program (and ``k`` samples for pass@k); rubric items a ``checks`` list.
    """

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")
    name: str = "task"
    path: Path
    manifest: Path | None = None  # the split helper's manifest; a changed test set is refused
    metrics: list[str] = Field(default_factory=lambda: ["exact_match"])
    category_metrics: dict[str, list[str]] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=1)

    def metrics_for(self, category: str) -> list[str]:
        return self.category_metrics.get(category, self.metrics)


class ProbeSuiteSpec(BaseModel):
    """A capability-regression probe suite: ``general`` (shipped) or a user file."""

    model_config = ConfigDict(extra="forbid")
    suite: str = "general"  # "general" or a path to a JSONL file of probes
    limit_per_category: int | None = Field(default=None, ge=1)
    #: the control answers this suite without its system prompt and few-shot turns: the base
    #: model's own general capability, which a fine-tune must keep (a production prompt can make
    #: the control answer a general question in the task's format, so it is no baseline for it)
    bare_control: bool = False


class EmbeddingSetSpec(BaseModel):
    """An embedding evaluation: retrieval (queries, corpus, qrels), STS pairs or named pairs."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["retrieval", "sts", "named_pairs"]
    path: Path | None = None  # sts / named_pairs: one JSONL or CSV file
    queries: Path | None = None  # retrieval
    corpus: Path | None = None
    qrels: Path | None = None
    split: Literal["in_domain", "held_out_topic"] = "in_domain"

    @model_validator(mode="after")
    def _files(self) -> EmbeddingSetSpec:
        if self.kind == "retrieval":
            if None in (self.queries, self.corpus, self.qrels):
                raise ValueError(f"embeddings {self.name}: retrieval needs queries, corpus, qrels")
        elif self.path is None:
            raise ValueError(f"embeddings {self.name}: {self.kind} needs path")
        return self


class CodeSpec(BaseModel):
    """Limits of the sandbox that runs code answers with their tests (pass@k)."""

    model_config = ConfigDict(extra="forbid")
    timeout_seconds: float = Field(default=5.0, gt=0)
    memory_mb: int = Field(default=512, ge=32)
    parallel: int = Field(default=2, ge=1)


class ThresholdSpec(BaseModel):
    """Probe drop margins (relative to the control's score) and the task's superiority bar."""

    model_config = ConfigDict(extra="forbid")
    probe_acceptable_drop: float = Field(default=0.05, ge=0, lt=1)
    probe_fail_drop: float = Field(default=0.15, gt=0, le=1)
    task_min_improvement: float = Field(default=0.0, ge=0)  # superiority margin

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdSpec:
        if self.probe_fail_drop <= self.probe_acceptable_drop:
            raise ValueError("thresholds.probe_fail_drop must exceed probe_acceptable_drop")
        return self


class JudgeGateSpec(BaseModel):
    """The pairwise LLM judge may gate only after passing `tunegate judge calibrate`.

    ``calibration`` is the JSON that ``tunegate judge calibrate --json`` printed for the same
    judge model as ``judge.endpoint`` in the root settings.
    """

    model_config = ConfigDict(extra="forbid")
    calibration: Path | None = None
    min_accuracy: float = Field(default=0.7, ge=0, le=1)
    min_kappa: float = Field(default=0.4, ge=-1, le=1)
    min_swap_consistency: float = Field(default=0.7, ge=0, le=1)


class EvalSpec(BaseModel):
    """Everything one offline evaluation needs."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="offline", pattern=r"^[^{}\s]+$")  # the experiment name
    candidate_version: str | None = None  # recorded with the result; default: the candidate
    control: ArmSpec
    candidate: ArmSpec
    control_kind: Literal["strongest", "zero_shot"] = "strongest"
    endpoint: Literal["chat", "embeddings"] = "chat"
    upstreams: dict[str, dict[str, object]] = Field(default_factory=dict)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    tests: list[TestSetSpec] = Field(default_factory=list)
    probes: list[ProbeSuiteSpec] = Field(default_factory=list)
    embeddings: list[EmbeddingSetSpec] = Field(default_factory=list)
    training_files: list[Path] = Field(default_factory=list)  # for the contamination check
    trainer_log: Path | None = None  # trainer_state.json or a TensorBoard event file/folder
    evaluated_step: int | None = None  # the checkpoint's step, for the best-checkpoint warning
    thresholds: ThresholdSpec = Field(default_factory=ThresholdSpec)
    code: CodeSpec = Field(default_factory=CodeSpec)
    judge: JudgeGateSpec = Field(default_factory=JudgeGateSpec)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    seed: int = 0
    bootstrap_resamples: int = Field(default=2000, ge=100)
    contamination_threshold: float = Field(default=0.05, ge=0, le=1)  # share of items
    concurrency: int = Field(default=8, ge=1)
    cache_dir: Path = Path(".tunegate/eval-cache")
    out_dir: Path = Path(".tunegate/eval")

    @model_validator(mode="after")
    def _strongest_control(self) -> EvalSpec:
        if (
            self.endpoint == "chat"
            and self.control_kind == "strongest"
            and not self.control.prompted
        ):
            raise ValueError(
                "control: the control must be the strongest baseline (the base model with"
                " the production system_prompt and few_shot examples); to compare against"
                " a bare zero-shot base, set control_kind: zero_shot"
            )
        if self.endpoint == "chat" and not (self.tests or self.probes):
            raise ValueError("tests: a chat evaluation needs at least one test set or probe suite")
        if self.endpoint == "embeddings" and not self.embeddings:
            raise ValueError("embeddings: an embedding evaluation needs at least one set")
        return self

    @property
    def version(self) -> str:
        return self.candidate_version or self.candidate.model or self.candidate.upstream

    def resolve(self, base: Path) -> EvalSpec:
        """The spec with its relative paths taken from ``base`` (the spec file's folder)."""

        def fix(path: Path | None) -> Path | None:
            if path is None or path.is_absolute():
                return path
            return base / path

        data = self.model_dump()
        for group in ("tests", "embeddings"):
            for entry in data[group]:
                for key in ("path", "manifest", "queries", "corpus", "qrels"):
                    if entry.get(key) is not None:
                        entry[key] = fix(Path(entry[key]))
        for probe in data["probes"]:
            if probe["suite"] != "general":
                probe["suite"] = str(fix(Path(probe["suite"])))
        data["training_files"] = [fix(Path(p)) for p in data["training_files"]]
        for key in ("trainer_log",):
            if data[key] is not None:
                data[key] = fix(Path(data[key]))
        if data["judge"]["calibration"] is not None:
            data["judge"]["calibration"] = fix(Path(data["judge"]["calibration"]))
        return EvalSpec.model_validate(data)


def _field_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])
        path = path.replace(".[", "[")
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {message}" if path else message)
    return "\n".join(lines)


def load_spec(path: Path | None, **overrides: object) -> EvalSpec:
    """The spec from a YAML file (or none) with flag ``overrides``; ConfigError when invalid."""
    data: dict[str, object] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"spec file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"spec file {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"spec file {path}: expected a mapping at the top level")
        data = dict(loaded or {})
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}  # type: ignore[dict-item]  # both are mappings
        else:
            data[key] = value
    try:
        spec = EvalSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_field_errors(exc)) from None
    return spec.resolve(path.parent if path is not None else Path.cwd())
