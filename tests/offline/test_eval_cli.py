"""`tunegate eval` end to end: outcomes and exit codes, reports, cache, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import main
from tests.offline.pipeline_fixtures import Oracle, oracle, write_jsonl, write_spec

__all__ = ["oracle"]  # the fixture, imported for pytest

PROMPT = "Answer with one word."


def _items(n: int) -> list[dict[str, object]]:
    return [
        {"id": f"q{i}", "prompt": f"question {i}", "reference": f"answer{i}",
         "category": "even" if i % 2 == 0 else "odd"}
        for i in range(n)
    ]  # fmt: skip


def _spec(tmp_path: Path, url: str, **extra: object) -> Path:
    spec: dict[str, object] = {
        "name": "support",
        "upstreams": {"double": {"base_url": url}},
        "control": {"upstream": "double", "model": "base", "system_prompt": PROMPT},
        "candidate": {"upstream": "double", "model": "tuned"},
        "tests": [{"name": "task", "path": "test.jsonl", "metrics": ["exact_match", "rouge_l"]}],
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
        "bootstrap_resamples": 500,
    }
    spec.update(extra)
    return write_spec(tmp_path / "eval.yaml", spec)


def _answer(server: Oracle, model: str, right: set[int], n: int) -> None:
    for i in range(n):
        server.answers[(model, f"question {i}")] = f"answer{i}" if i in right else "no idea"


def _eval(spec: Path, *flags: str) -> int:
    return main(["eval", "--spec", str(spec), "--no-html", *flags])


def test_pass_then_rerun_makes_no_calls_and_same_json(tmp_path, oracle, capsys):
    server, url = oracle
    n = 40
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(range(0, n, 4)), n)  # control right on a quarter
    _answer(server, "tuned", set(range(n)) - {1, 2}, n)  # candidate right on 38
    spec = _spec(tmp_path, url)
    assert _eval(spec, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "pass" and document["exit_code"] == 0
    assert document["schema_version"] == 1
    assert document["control_kind"] == "strongest"
    overall = {c["metric"]: c for c in document["comparisons"] if c["category"] == "all"}
    assert overall["exact_match"]["test"] == "mcnemar"
    assert overall["exact_match"]["control"] == pytest.approx(10 / 40)
    assert overall["exact_match"]["candidate"] == pytest.approx(38 / 40)
    assert overall["rouge_l"]["test"] == "bootstrap"
    assert {c["category"] for c in document["comparisons"]} == {"all", "even", "odd"}
    assert server.calls == 2 * n
    # the control got the production prompt, the candidate none
    first = json.loads((tmp_path / "out" / "run.json").read_text())
    assert first["model_calls"] == 2 * n and first["cache_hits"] == 0
    before = (tmp_path / "out" / "report.json").read_bytes()
    assert _eval(spec) == 0
    assert server.calls == 2 * n  # a re-run makes no model calls
    second = json.loads((tmp_path / "out" / "run.json").read_text())
    assert second["model_calls"] == 0 and second["cache_hits"] == 2 * n
    assert (tmp_path / "out" / "report.json").read_bytes() == before  # same seed, same JSON
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "**pass**" in summary and "task/exact_match" in summary


def test_regression_fails_with_it_named(tmp_path, oracle, capsys):
    server, url = oracle
    n = 40
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(range(n)), n)
    _answer(server, "tuned", {i for i in range(n) if i % 2 == 0}, n)  # forgets every odd one
    assert _eval(_spec(tmp_path, url), "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "fail"
    named = " ".join(document["regressions"])
    assert "task/exact_match [odd]" in named and "task/exact_match:" in named
    assert "[even]" not in named


def test_identical_arms_are_inconclusive(tmp_path, oracle, capsys):
    server, url = oracle
    n = 30
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    right = set(range(0, n, 2))
    _answer(server, "base", right, n)
    _answer(server, "tuned", right, n)
    assert _eval(_spec(tmp_path, url), "--json") == 3
    document = json.loads(capsys.readouterr().out)
    assert document["outcome"] == "inconclusive"
    assert document["regressions"] == []


def test_small_difference_says_how_many_items(tmp_path, oracle, capsys):
    server, url = oracle
    n = 20
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(range(10)), n)
    _answer(server, "tuned", set(range(12)) - {0}, n)  # +2 wins, 1 loss
    spec = _spec(tmp_path, url, tests=[{"name": "task", "path": "test.jsonl",
                                        "metrics": ["exact_match"]}])  # fmt: skip
    assert _eval(spec, "--json") == 3
    document = json.loads(capsys.readouterr().out)
    assert isinstance(document["items_needed"], int) and document["items_needed"] > 0
    assert any("more items" in r for r in document["reasons"])


def test_config_errors_exit_2_with_the_field(tmp_path, oracle, capsys):
    _, url = oracle
    write_jsonl(tmp_path / "test.jsonl", _items(4))
    bare = _spec(tmp_path, url, control={"upstream": "double", "model": "base"})
    assert _eval(bare) == 2
    assert "control_kind: zero_shot" in capsys.readouterr().err
    unknown = _spec(tmp_path, url, candidate={"upstream": "nowhere"})
    assert _eval(unknown) == 2
    assert "candidate.upstream: unknown upstream 'nowhere'" in capsys.readouterr().err
    metric = _spec(tmp_path, url, tests=[{"path": "test.jsonl", "metrics": ["bogus"]}])
    assert _eval(metric) == 2
    assert "unknown metric 'bogus'" in capsys.readouterr().err
    assert _eval(tmp_path / "missing.yaml") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "test.jsonl").write_text('{"prompt": "a"}\nnot json\n')
    assert _eval(_spec(tmp_path, url)) == 2
    assert "test.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_zero_shot_control_is_said_in_the_report(tmp_path, oracle, capsys):
    server, url = oracle
    n = 20
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(), n)
    _answer(server, "tuned", set(range(n)), n)
    spec = _spec(tmp_path, url, control={"upstream": "double", "model": "base"},
                 control_kind="zero_shot")  # fmt: skip
    assert _eval(spec, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["control_kind"] == "zero_shot"
    assert "not the strongest baseline" in document["control_note"]


def test_general_probes_name_the_broken_category(tmp_path, oracle, capsys):
    from analysis.offline.probes import load_suite

    server, url = oracle
    probes = load_suite("general")
    for probe in probes:
        server.answers[("base", str(probe.prompt))] = str(probe.reference)
        broken = probe.category == "arithmetic"
        server.answers[("tuned", str(probe.prompt))] = "no idea" if broken else str(probe.reference)
    n = 30
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(), n)
    _answer(server, "tuned", set(range(n)), n)
    spec = _spec(tmp_path, url, probes=[{"suite": "general"}])
    assert _eval(spec, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    probe_rows = [c for c in document["comparisons"] if c["role"] == "probe"]
    assert {c["category"] for c in probe_rows} == {
        "reasoning", "arithmetic", "facts", "instruction_following", "code"
    }  # fmt: skip
    code = next(c for c in probe_rows if c["category"] == "code")
    assert code["metric"] == "pass@1" and code["control"] == 1.0 and code["verdict"] == "pass"
    verdicts = {c["category"]: c["verdict"] for c in probe_rows}
    assert verdicts.pop("arithmetic") == "fail"
    assert set(verdicts.values()) == {"pass"}
    assert len(document["regressions"]) == 1
    assert "probes/probe [arithmetic]" in document["regressions"][0]


@pytest.mark.parametrize("bare", [False, True])
def test_a_bare_control_shows_the_forgetting_a_production_prompt_hides(
    tmp_path, oracle, capsys, bare
):
    """With its production prompt the control answers every probe in the task's format, so a
    candidate that forgot the answers looks no worse; answering bare, the base shows them."""
    server, url = oracle
    probes = [
        {"id": f"p{i}", "prompt": f"What is {i} + {i}?", "reference": str(2 * i),
         "category": "arithmetic"}
        for i in range(30)
    ]  # fmt: skip
    write_jsonl(tmp_path / "probes.jsonl", probes)
    for probe in probes:
        server.answers[("base", probe["prompt"])] = f"It is {probe['reference']}."
        server.prompted[("base", probe["prompt"])] = '{"team": "billing"}'
        server.answers[("tuned", probe["prompt"])] = '{"team": "billing"}'
    n = 30
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "base", set(), n)
    _answer(server, "tuned", set(range(n)), n)
    suite = {"suite": str(tmp_path / "probes.jsonl"), "bare_control": bare}
    assert _eval(_spec(tmp_path, url, probes=[suite]), "--json") == (1 if bare else 0)
    document = json.loads(capsys.readouterr().out)
    (probe_row,) = [c for c in document["comparisons"] if c["role"] == "probe"]
    assert probe_row["control"] == (1.0 if bare else 0.0) and probe_row["candidate"] == 0.0
    assert next(s for s in document["sets"] if s["role"] == "probe")["bare_control"] is bare
    if bare:
        assert "probes/probe [arithmetic]" in document["regressions"][0]


def test_code_task_pass_at_k_runs_the_tests(tmp_path, oracle, capsys):
    server, url = oracle
    rows = []
    for i in range(6):
        prompt = f"Write f{i}(x) returning x + {i}."
        rows.append({"id": f"c{i}", "prompt": prompt, "tests": f"assert f{i}(1) == {1 + i}",
                     "k": 3, "category": "code"})  # fmt: skip
        server.answers[("tuned", prompt)] = f"```python\ndef f{i}(x):\n    return x + {i}\n```"
        server.answers[("base", prompt)] = (
            f"def f{i}(x):\n    while True: pass" if i < 1 else (f"def f{i}(x):\n    return x")
        )
    write_jsonl(tmp_path / "code.jsonl", rows)
    spec = _spec(
        tmp_path,
        url,
        tests=[{"name": "code", "path": "code.jsonl", "metrics": ["pass@1", "pass@3"]}],
        code={"timeout_seconds": 1.0},
    )
    assert _eval(spec, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    overall = {c["metric"]: c for c in document["comparisons"] if c["category"] == "all"}
    assert overall["pass@1"]["candidate"] == 1.0 and overall["pass@1"]["control"] == 0.0
    assert overall["pass@3"]["test"] == "bootstrap"  # k = 3 samples: pass@k is not binary
    assert server.calls == 2 * 6 * 3
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["code_runs"] == 2 * 6  # identical samples and both metrics share one run each


def test_changed_prompt_or_upstream_asks_again(tmp_path, oracle):
    server, url = oracle
    n = 6
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    assert _eval(_spec(tmp_path, url)) in (0, 1, 3)
    assert server.calls == 2 * n
    # a new production prompt: only the control is asked again
    control = {"upstream": "double", "model": "base", "system_prompt": "Be terse."}
    assert _eval(_spec(tmp_path, url, control=control)) in (0, 1, 3)
    assert server.calls == 3 * n
    # the same upstream name pointing at other settings: both arms again
    upstreams = {"double": {"base_url": url, "timeout_seconds": 30}}
    assert _eval(_spec(tmp_path, url, control=control, upstreams=upstreams)) in (0, 1, 3)
    assert server.calls == 5 * n


def test_trainer_log_diagnosis_goes_into_the_report(tmp_path, oracle, capsys):
    server, url = oracle
    n = 20
    write_jsonl(tmp_path / "test.jsonl", _items(n))
    _answer(server, "tuned", set(range(n)), n)
    history = []
    for step in range(1, 11):
        history.append({"step": step * 10, "loss": 2.0 - 0.15 * step})
        history.append(
            {"step": step * 10, "eval_loss": 1.5 - 0.1 * step if step < 5 else 0.9 + 0.1 * step}
        )
    (tmp_path / "trainer_state.json").write_text(
        json.dumps(
            {"log_history": history, "global_step": 100, "best_model_checkpoint": "checkpoint-40"}
        )
    )
    spec = _spec(tmp_path, url, trainer_log="trainer_state.json", evaluated_step=100)
    assert _eval(spec, "--json") == 0
    document = json.loads(capsys.readouterr().out)
    training = document["training"]
    assert training["overfitting"] is True and training["best_step"] == 40
    assert training["curves"]["validation"][0] == [10, 1.4]
    assert any(r.startswith("Training: ") for r in document["reasons"])
