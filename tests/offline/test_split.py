"""The stratified seeded split and its manifest: fractions per category, locking, refusal."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.offline.split import ManifestError, item_key, split_rows, verify, write_split
from tunegate.errors import ConfigError


def _rows(sizes: dict[str, int]):
    return [
        {"id": f"{cat}-{i}", "prompt": f"question {i} about {cat}", "category": cat}
        for cat, size in sizes.items()
        for i in range(size)
    ]


def test_split_is_80_10_10_per_category_and_seeded():
    rows = _rows({"billing": 50, "refund": 30, "tech": 20, "rare": 1})
    split = split_rows(rows, seed=3)
    for part, share in ((split.train, 0.8), (split.validation, 0.1), (split.test, 0.1)):
        counts = Counter(r["category"] for r in part)
        for cat, size in (("billing", 50), ("refund", 30), ("tech", 20)):
            assert counts[cat] == round(size * share)
    assert len(split.train) + len(split.validation) + len(split.test) == len(rows)
    assert {item_key(r) for r in split.train + split.validation + split.test} == {
        r["id"] for r in rows
    }
    again = split_rows(rows, seed=3)
    assert again == split
    other = split_rows(rows, seed=4)
    assert [r["id"] for r in other.test] != [r["id"] for r in split.test]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 40), min_size=1),
    seed=st.integers(0, 2**31),
)
def test_split_partitions_every_category_within_one_of_its_fraction(sizes, seed):
    rows = _rows(sizes)
    split = split_rows(rows, seed=seed)
    for cat, size in sizes.items():
        parts = [
            sum(r["category"] == cat for r in p)
            for p in (split.train, split.validation, split.test)
        ]
        assert sum(parts) == size
        for got, share in zip(parts, (0.8, 0.1, 0.1), strict=True):
            assert abs(got - size * share) < 1


def test_manifest_locks_the_test_set(tmp_path):
    rows = _rows({"a": 40, "b": 20})
    manifest = write_split(rows, tmp_path, seed=1)
    test = tmp_path / "test.jsonl"
    assert verify(test, manifest) == 6
    data = orjson.loads(manifest.read_bytes())
    assert data["categories"] == {"a": 4, "b": 2} and len(data["items"]) == 6
    # reordering the lines is not a change
    lines = test.read_text().splitlines()
    test.write_text("\n".join(reversed(lines)) + "\n")
    assert verify(test, manifest) == 6
    # editing one item's reference is
    edited = orjson.loads(lines[0])
    edited["reference"] = "a new answer"
    test.write_text("\n".join([orjson.dumps(edited).decode(), *lines[1:]]) + "\n")
    with pytest.raises(ManifestError, match=rf"changed 1 \({edited['id']}\)"):
        verify(test, manifest)
    # adding and dropping items
    test.write_text("\n".join([*lines[1:], '{"id": "new", "prompt": "x"}']) + "\n")
    with pytest.raises(ManifestError, match=r"added 1 .*removed 1"):
        verify(test, manifest)


def test_manifest_errors_are_config_errors(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    (tmp_path / "t.jsonl").write_text('{"id": "x", "prompt": "y"}\n')
    with pytest.raises(ConfigError, match="not a readable test manifest"):
        verify(tmp_path / "t.jsonl", bad)
    (tmp_path / "t.jsonl").write_text("[1, 2]\n")
    write_split(_rows({"a": 10}), tmp_path / "s")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        verify(tmp_path / "t.jsonl", tmp_path / "s" / "test.manifest.json")


def test_split_refuses_bad_fractions_and_duplicate_ids():
    with pytest.raises(ValueError, match="fractions"):
        split_rows(_rows({"a": 3}), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="distinct"):
        split_rows([{"id": "x"}, {"id": "x"}])
    # rows without ids are keyed by their content
    split = split_rows([{"prompt": "one"}, {"prompt": "two"}], fractions=(0.5, 0, 0.5))
    assert len(split.train) == len(split.test) == 1


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_hostile_bytes_are_rows_or_a_config_error(tmp_path_factory, data):
    from analysis.offline.split import read_rows

    path = tmp_path_factory.mktemp("hostile") / "t.jsonl"
    path.write_bytes(data)
    try:
        rows = read_rows(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
    else:
        assert all(isinstance(r, dict) for r in rows)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.dictionaries(st.sampled_from(["id", "prompt", "x"]), st.text(max_size=8))))
def test_manifest_round_trips_any_rows(tmp_path_factory, rows):
    unique = list({item_key(r): r for r in rows}.values())
    out = tmp_path_factory.mktemp("m")
    manifest = write_split(unique, out, fractions=(0.0, 0.0, 1.0))
    assert verify(out / "test.jsonl", manifest) == len(unique)
