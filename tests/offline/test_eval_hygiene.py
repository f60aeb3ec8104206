"""A locked test set is refused once changed; contamination fails the run, clean subset beside."""

from __future__ import annotations

import json

from cli import main
from tests.offline.pipeline_fixtures import oracle, write_jsonl, write_spec

__all__ = ["oracle"]


def _rows(n: int) -> list[dict[str, object]]:
    return [
        {"id": f"r{i}", "prompt": f"Ticket number {i}: the {['router', 'vault'][i % 2]} shows"
         f" error code E{i:03d} after the nightly upgrade of region {i % 7}.",
         "reference": "yes", "category": ["router", "vault"][i % 2]}
        for i in range(n)
    ]  # fmt: skip


def test_split_then_locked_test_set_refuses_changes(tmp_path, oracle, capsys):
    _, url = oracle
    write_jsonl(tmp_path / "all.jsonl", _rows(100))
    assert main(["eval", "split", "--input", str(tmp_path / "all.jsonl"),
                 "--out", str(tmp_path / "split"), "--seed", "3"]) == 0  # fmt: skip
    written = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in written] == [
        "train.jsonl", "validation.jsonl", "test.jsonl", "test.manifest.json"
    ]  # fmt: skip
    test = tmp_path / "split" / "test.jsonl"
    test_rows = [json.loads(line) for line in test.read_text().splitlines()]
    assert len(test_rows) == 10 and {r["category"] for r in test_rows} == {"router", "vault"}
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "upstreams": {"double": {"base_url": url}},
            "control": {"upstream": "double", "model": "base", "system_prompt": "Say yes."},
            "candidate": {"upstream": "double", "model": "tuned"},
            "tests": [
                {"path": str(test), "manifest": str(tmp_path / "split" / "test.manifest.json")}
            ],
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
        },
    )
    assert main(["eval", "--spec", str(spec), "--no-html"]) in (0, 1, 3)  # the manifest matches
    capsys.readouterr()
    test_rows[0]["reference"] = "no"  # someone edits a locked test item
    write_jsonl(test, test_rows)
    assert main(["eval", "--spec", str(spec), "--no-html"]) == 2
    err = capsys.readouterr().err
    assert "does not match its manifest" in err and test_rows[0]["id"] in err


def test_contaminated_test_set_fails_and_reports_the_clean_subset(tmp_path, oracle, capsys):
    server, url = oracle
    rows = _rows(40)
    for row in rows:
        server.answers[("tuned", str(row["prompt"]))] = "yes"
    write_jsonl(tmp_path / "test.jsonl", rows)
    # training file: 8 of the 40 test items verbatim, 4 lightly edited, plus unrelated rows
    planted = [dict(r, reference="yes") for r in rows[:8]]
    edited = [dict(r, prompt=str(r["prompt"]).replace("nightly", "weekly")) for r in rows[8:12]]
    other = [{"prompt": f"unrelated training example {i}", "reference": "x"} for i in range(30)]
    write_jsonl(tmp_path / "train.jsonl", planted + edited + other)
    spec = write_spec(
        tmp_path / "eval.yaml",
        {
            "upstreams": {"double": {"base_url": url}},
            "control": {"upstream": "double", "model": "base", "system_prompt": "Say yes."},
            "candidate": {"upstream": "double", "model": "tuned"},
            "tests": [{"path": "test.jsonl"}],
            "training_files": ["train.jsonl"],
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "out"),
        },
    )
    assert main(["eval", "--spec", str(spec), "--json", "--no-html"]) == 1
    document = json.loads(capsys.readouterr().out)
    found = document["contamination"]["task"]
    flagged = {f["item"] for f in found["findings"]}
    assert {f"r{i}" for i in range(12)} <= flagged
    assert found["failed"] and found["share"] >= 0.3
    assert any("in the training files" in r for r in document["regressions"])
    clean = [c for c in document["comparisons"] if c["set"] == "task:clean"]
    assert clean and clean[0]["n"] == 40 - len(flagged) and clean[0]["primary"] is False
