"""Contamination check on planted duplicates, normalized copies, long overlaps and paraphrases."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from analysis.offline.contamination import check_contamination, normalize, row_text, source_texts
from tunegate.errors import ConfigError

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "pra", "dul", "gor", "bex"]


def _sentences(count: int, words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = sorted({"".join(rng.choice(SYLLABLES, size=3)) for _ in range(3000)})
    return [" ".join(rng.choice(vocab, size=words)) + "." for _ in range(count)]


def _planted() -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    train = _sentences(300, 24, seed=1)
    validation = _sentences(50, 24, seed=2)
    clean = _sentences(40, 24, seed=3)
    items = [(f"clean-{i}", t) for i, t in enumerate(clean)]
    items += [("exact-0", train[5]), ("exact-1", validation[7])]
    items += [("normalized-0", "  " + train[9].upper().replace(".", "!") + "  ")]
    run = " ".join(train[20].split()[2:17])  # 15 words in a row, new words around them
    items += [("ngram-0", f"Please answer: {run} thanks a lot")]
    words = train[30].split()
    words[3], words[11] = "banana", "kiwi"  # two words edited: a near duplicate
    items += [("near-0", " ".join(words))]
    return items, {"train.jsonl": train, "validation.jsonl": validation}


def test_planted_duplicates_are_found_and_the_clean_subset_kept():
    items, sources = _planted()
    result = check_contamination(items, sources, threshold=0.05)
    kinds = {f.item: f.kind for f in result.findings}
    assert kinds == {
        "exact-0": "exact",
        "exact-1": "exact",
        "normalized-0": "normalized",
        "ngram-0": "ngram",
        "near-0": "near_duplicate",
    }
    where = {f.item: (f.source, f.row) for f in result.findings}
    assert where["exact-1"] == ("validation.jsonl", 7)
    assert where["near-0"] == ("train.jsonl", 30)
    near = next(f for f in result.findings if f.item == "near-0")
    assert 0.7 <= near.score < 1
    assert result.clean == [f"clean-{i}" for i in range(40)]
    assert result.counts == {"exact": 2, "normalized": 1, "ngram": 1, "near_duplicate": 1}
    assert result.share == pytest.approx(5 / 45) and result.failed
    assert not check_contamination(items, sources, threshold=0.2).failed


def test_clean_sets_pass_and_short_items_do_not_match_by_accident():
    clean = [(f"c{i}", t) for i, t in enumerate(_sentences(60, 24, seed=9))]
    result = check_contamination(clean, {"train.jsonl": _sentences(300, 24, seed=1)})
    assert result.findings == [] and len(result.clean) == 60 and not result.failed
    short = check_contamination([("q", "What is 2 + 2?")], {"t": ["What is 3 + 5?"]})
    assert short.findings == []


def test_normalize_and_row_text(tmp_path):
    assert normalize("  Hello,\tWORLD!!  ﬁne ") == "hello world fine"
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert row_text(row) == "hi\nyo"
    assert row_text({"prompt": "p", "completion": "c", "n": 3}) == "p\nc"
    path = tmp_path / "train.jsonl"
    path.write_text(orjson.dumps(row).decode() + "\n" + orjson.dumps({"text": "t"}).decode())
    assert source_texts(path) == ["hi\nyo", "t"]
    table = tmp_path / "train.csv"
    table.write_text('prompt,completion,score\n"a, b",c,1\n')
    assert source_texts(table) == ["a, b\nc"]
    plain = tmp_path / "train.txt"
    plain.write_text("one\n\ntwo\n")
    assert source_texts(plain) == ["one", "two"]
    plain.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="UTF-8"):
        source_texts(plain)
    with pytest.raises(ValueError):
        check_contamination([], {}, jaccard=0)


@pytest.mark.slow
def test_paraphrases_are_found_with_minilm():
    from tests.offline import minilm

    train = [
        "How do I reset my account password?",
        "The invoice total for March is wrong.",
        "Ship my order to Canada by express post.",
    ]
    items = [
        ("para-0", "What are the steps to change the password of my account?"),
        ("para-1", "My March invoice shows an incorrect total amount."),
        ("clean-0", "Which programming languages does the SDK support?"),
        ("clean-1", "The office is closed on public holidays."),
    ]
    without = check_contamination(items, {"train.jsonl": train})
    assert without.findings == []  # different words: no duplicate check can see it
    result = check_contamination(items, {"train.jsonl": train}, embed=minilm.embed, cosine=0.75)
    found = {f.item: (f.kind, f.row) for f in result.findings}
    assert found == {"para-0": ("paraphrase", 0), "para-1": ("paraphrase", 1)}
    assert result.clean == ["clean-0", "clean-1"]
