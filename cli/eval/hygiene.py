"""The data-hygiene steps of a run, from the offline plane: locked test sets, contamination,
probe suites and training curves, joined to the run's sets and sections here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from analysis.offline.items import EvalItem
from tunegate.errors import ConfigError

if TYPE_CHECKING:
    from analysis.offline.spec import EvalSpec
    from cli.eval.pipeline import EvalSet

__all__ = ["contamination", "probe_items", "split_file", "training_curves", "verify_manifest"]


def verify_manifest(manifest: Path, test_file: Path) -> int:
    """Refuse (ManifestError, a ConfigError) a test set whose items changed since its split."""
    from analysis.offline.split import verify

    return verify(test_file, manifest)


def split_file(source: Path, out_dir: Path, seed: int) -> list[Path]:
    """80/10/10 stratified by category; the written files, the manifest last."""
    from analysis.offline.split import read_rows, write_split

    if not source.is_file():
        raise ConfigError(f"--input: {source} does not exist")
    manifest = write_split(read_rows(source), out_dir, seed=seed)
    return [out_dir / f"{part}.jsonl" for part in ("train", "validation", "test")] + [manifest]


def probe_items(suite: str, limit_per_category: int | None) -> list[EvalItem]:
    """The items of a probe suite: ``general`` (shipped) or a JSONL/CSV file of probes."""
    from analysis.offline.probes import load_suite, suite_path

    if not suite_path(suite).is_file():
        raise ConfigError(f"probes: suite {suite} does not exist")
    return load_suite(suite, limit_per_category)


def contamination(spec: EvalSpec, sets: list[EvalSet]) -> dict[str, object]:
    """Check each task set against the training and validation files; mark its clean items.

    The result per set goes into the report; a set whose contaminated share is above the
    spec's threshold fails the run (see ``failed``).
    """
    from analysis.offline.contamination import check_contamination, row_text, source_texts

    for path in spec.training_files:
        if not path.is_file():
            raise ConfigError(f"training_files: {path} does not exist")
    sources = {str(p): source_texts(p) for p in spec.training_files}
    report: dict[str, object] = {}
    for s in sets:
        if s.role != "task":
            continue
        found = check_contamination(
            [(i.id, row_text(i.model_dump())) for i in s.items],
            sources,
            threshold=spec.contamination_threshold,
        )
        s.clean = set(found.clean)
        report[s.name] = {
            "n": found.n,
            "share": found.share,
            "threshold": found.threshold,
            "failed": found.failed,
            "counts": found.counts,
            "findings": [
                {"item": f.item, "kind": f.kind, "source": f.source, "row": f.row, "score": f.score}
                for f in found.findings
            ],
        }
    return report


def training_curves(spec: EvalSpec) -> dict[str, object]:
    """The trainer log's diagnosis (overfitting, gap, best checkpoint) and its curves."""
    from analysis.offline.curves import diagnose, read_log

    assert spec.trainer_log is not None
    found = diagnose(read_log(spec.trainer_log), evaluated_step=spec.evaluated_step)
    return {
        "overfitting": found.overfitting,
        "rising_since": found.rising_since,
        "gap": found.gap,
        "best_step": found.best_step,
        "best_eval_loss": found.best_eval_loss,
        "evaluated_step": found.evaluated_step,
        "warnings": found.warnings,
        "curves": {
            "train": [list(p) for p in found.train],
            "validation": [list(p) for p in found.eval],
        },
    }
