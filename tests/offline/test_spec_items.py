"""The eval spec and test-set files: validation messages, relative paths, CSV and JSONL rows."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.offline.items import load_items
from analysis.offline.spec import load_spec
from tunegate.errors import ConfigError

BASE = {
    "control": {"upstream": "a", "system_prompt": "p"},
    "candidate": {"upstream": "b"},
    "tests": [{"path": "t.jsonl"}],
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_relative_paths_follow_the_spec_file(tmp_path):
    (tmp_path / "sub").mkdir()
    text = (
        "control: {upstream: a, system_prompt: p}\ncandidate: {upstream: b}\n"
        "tests: [{path: t.jsonl, manifest: m.json}]\ntraining_files: [train.jsonl]\n"
        "probes: [{suite: general}, {suite: mine.jsonl}]\n"
    )
    spec_file = _write(tmp_path / "sub" / "eval.yaml", text)
    spec = load_spec(spec_file)
    assert spec.tests[0].path == tmp_path / "sub" / "t.jsonl"
    assert spec.tests[0].manifest == tmp_path / "sub" / "m.json"
    assert spec.training_files == [tmp_path / "sub" / "train.jsonl"]
    assert [p.suite for p in spec.probes] == ["general", str(tmp_path / "sub" / "mine.jsonl")]
    assert spec.version == "b"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"control": {"upstream": "a"}}, "control_kind: zero_shot"),
        ({"thresholds": {"probe_acceptable_drop": 0.2, "probe_fail_drop": 0.1}}, "must exceed"),
        ({"alpha": 0.7}, "alpha"),
        ({"tests": []}, "at least one test set"),
        ({"endpoint": "embeddings"}, "at least one set"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        (
            {"embeddings": [{"name": "x", "kind": "retrieval", "queries": "q"}]},
            "queries, corpus, qrels",
        ),
    ],
)
def test_invalid_specs_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        load_spec(None, **{**BASE, **change})


def test_not_yaml_or_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(_write(tmp_path / "a.yaml", "control: [unclosed"))
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_spec(_write(tmp_path / "b.yaml", "- a\n- b\n"))


def test_csv_rows_with_labels_and_messages(tmp_path):
    path = _write(
        tmp_path / "t.csv",
        "id,prompt,reference,category,team\n1,hello,hi,greet,core\n2,,x,other,\n",
    )
    with pytest.raises(ConfigError, match="item 2"):
        load_items(path)  # neither prompt nor messages
    path = _write(
        tmp_path / "u.csv",
        "prompt,reference,messages,team\nhello,hi,,core\n"
        ',x,"[{""role"": ""user"", ""content"": ""yo""}]",\n',
    )
    items = load_items(path)
    assert items[0].labels == {"team": "core"} and items[0].category == "default"
    assert items[1].user_messages() == [{"role": "user", "content": "yo"}]
    assert items[0].id != items[1].id and len(items[0].id) == 16


def test_jsonl_errors_name_the_line_and_ids_are_unique(tmp_path):
    with pytest.raises(ConfigError, match=r"t.jsonl:2: not valid JSON"):
        load_items(_write(tmp_path / "t.jsonl", '{"prompt": "a"}\n{"prompt": \n'))
    with pytest.raises(ConfigError, match="expected a JSON object"):
        load_items(_write(tmp_path / "u.jsonl", "[1, 2]\n"))
    with pytest.raises(ConfigError, match="duplicate item id 'x'"):
        load_items(
            _write(tmp_path / "v.jsonl", '{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n')
        )
    with pytest.raises(ConfigError, match="does not exist"):
        load_items(tmp_path / "missing.jsonl")


_PIECES = [b"\n", b",", b'"', b"{", b"}", b"[", b"]", b":", b"prompt", b"messages", b"checks",
           b"id", b"\x00", b"1", b"a", b"\r", b"labels", b"null"]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200), st.lists(st.sampled_from(_PIECES), max_size=40).map(b"".join)
    )
)
def test_arbitrary_bytes_never_crash_the_loader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "t.jsonl"
    path.write_bytes(data)
    with contextlib.suppress(ConfigError):  # refused with a message, or loaded: never a crash
        load_items(path)
    csv_path = path.with_suffix(".csv")
    csv_path.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_items(csv_path)


def test_line_separators_inside_strings_and_crlf_files(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes('{"prompt": "a\u2028b\x85c"}\r\n{"prompt": "d"}\r\n'.encode())
    items = load_items(path)
    assert [i.prompt for i in items] == ["a\u2028b\x85c", "d"]
