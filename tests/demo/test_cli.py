"""`tunegate demo` flags: usage errors exit 2 before anything loads; options reach the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import build_parser, main
from demo.command import QUICK, _options
from demo.run import DemoOptions


def test_judge_url_without_model_is_a_usage_error(capsys):
    assert main(["demo", "--judge-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--judge-url and --judge-model go together" in capsys.readouterr().err


def test_quick_sets_small_defaults_that_flags_override(tmp_path):
    args = build_parser().parse_args(
        ["demo", "--quick", "--train", "--items", "7", "--workdir", str(tmp_path)]
    )
    options = _options(args)
    assert isinstance(options, DemoOptions)
    assert (options.steps, options.items, options.probes) == (QUICK["steps"], 7, QUICK["probes"])
    assert options.workdir == tmp_path and options.judge is None and options.train


@pytest.mark.parametrize(
    ("flags", "steps", "train"),
    [
        (["--quick"], None, False),  # the shipped adapters' recipe: nothing to train
        (["--quick", "--retrain"], QUICK["steps"], True),  # --retrain implies --train
        (["--quick", "--embeddings"], QUICK["steps"], False),  # nothing ships for retrieval
        (["--steps", "3"], 3, False),  # another recipe: trained (no shipped adapter has it)
    ],
)
def test_quick_keeps_the_shipped_adapters_unless_told_to_train(flags, steps, train):
    options = _options(build_parser().parse_args(["demo", *flags]))
    assert isinstance(options, DemoOptions)
    assert (options.steps, options.train) == (steps, train)


def test_judge_flags_build_an_endpoint_with_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_JUDGE_KEY", "sk-test-secret")
    args = build_parser().parse_args(
        ["demo", "--judge-url", "http://judge/v1", "--judge-model", "gpt-x",
         "--judge-key-env", "DEMO_JUDGE_KEY"]
    )  # fmt: skip
    options = _options(args)
    assert isinstance(options, DemoOptions) and options.judge is not None
    assert options.judge.model == "gpt-x" and options.judge.base_url == "http://judge/v1"
    assert options.judge.api_key is not None
    assert options.judge.api_key.get_secret_value() == "sk-test-secret"
    assert "sk-test-secret" not in repr(options.judge)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--steps", "many"), ("--items", "0"), ("--probes", "-1"), ("--tolerance", "1.5")],
)
def test_counts_and_tolerance_are_checked(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_default_workdir_is_relative_to_the_current_directory():
    args = build_parser().parse_args(["demo"])
    assert args.workdir == Path(".tunegate/demo")


def test_greedy_answers_are_reused_unless_no_reuse():
    from demo.run import _reusing
    from proxy.config import LocalModelConfig, UpstreamConfig

    on = _options(build_parser().parse_args(["demo"]))
    off = _options(build_parser().parse_args(["demo", "--no-reuse"]))
    assert isinstance(on, DemoOptions) and isinstance(off, DemoOptions)
    assert on.reuse_answers and not off.reuse_answers
    lm = UpstreamConfig(local=LocalModelConfig(path="packaged:smollm2", adapter="/a"))
    reusing = _reusing(lm).local
    assert reusing is not None and reusing.reuse_greedy and reusing.adapter == "/a"
    assert lm.local is not None and not lm.local.reuse_greedy  # a copy, not an edit
    encoder = UpstreamConfig(local=LocalModelConfig(kind="embeddings", path="packaged:minilm"))
    assert encoder.local is not None and _reusing(encoder).local == encoder.local
