"""`tunegate experiments …` and `tunegate status` against a real proxy's admin API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli import experiments as experiments_cmd
from cli import status as status_cmd
from tests.proxy.conftest import ADMIN_TOKEN, READ_TOKEN, Proxy, experiment
from tests.proxy.test_live_experiments import LIVE


def tg(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tunegate")
    sub = parser.add_subparsers()
    experiments_cmd.register(sub)
    status_cmd.register(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # rich wraps table cells to the terminal's width


@pytest.fixture
def as_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEGATE_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.delenv("TUNEGATE_READ_TOKEN", raising=False)


def _out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_operate_an_experiment_from_the_cli(proxy: Proxy, as_admin: None, capsys: Any) -> None:
    url = ("--url", proxy.url)
    assert tg("experiments", "list", *url) == 0
    table = capsys.readouterr().out
    assert "exp-shadow" in table and "stage" in table
    assert tg("experiments", "pause", "exp-ab", "--reason", "incident", "--actor", "ann", *url) == 0
    assert "paused" in capsys.readouterr().out
    assert tg("experiments", "pause", "exp-ab", "--reason", "again", *url) == 1
    assert "409: 'exp-ab' is already paused" in capsys.readouterr().err
    assert tg("experiments", "resume", "exp-ab", "--reason", "ok", "--json", *url) == 0
    assert _out(capsys)["state"]["stage"] == "ab"
    assert tg("experiments", "rollback", "exp-ab", "--reason", "bad", "--expected-version", "1",
              *url) == 1  # fmt: skip
    assert tg("experiments", "promote", "exp-ab", "--reason", "wins", *url) == 0
    assert tg("experiments", "audit", "exp-ab", "--json", *url) == 0
    capsys.readouterr()
    assert tg("experiments", "audit", "exp-ab", *url) == 0
    audit = capsys.readouterr().out
    assert "admin-api:ann" in audit and "incident" in audit and "paused@0.5 -> ab@0.5" in audit
    assert tg("experiments", "show", "exp-ab", *url) == 0
    assert "no decision recorded yet" in capsys.readouterr().out
    assert tg("experiments", "approve", "exp-ab", *url) == 1
    assert "409" in capsys.readouterr().err
    assert tg("status", *url) == 0
    assert "exp-promoted" in capsys.readouterr().out
    assert tg("status", "--json", *url) == 0
    assert {e["name"] for e in _out(capsys)["experiments"]} >= {"exp-ab", "exp-shadow"}


def test_refusals_have_a_message_and_exit_code(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    url = ("--url", proxy.url)
    monkeypatch.delenv("TUNEGATE_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("TUNEGATE_READ_TOKEN", raising=False)
    assert tg("experiments", "list", *url) == 1
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("TUNEGATE_READ_TOKEN", READ_TOKEN)
    assert tg("experiments", "list", *url) == 0
    capsys.readouterr()
    assert tg("experiments", "pause", "exp-ab", "--reason", "x", *url) == 1
    err = capsys.readouterr().err
    assert "403" in err and "admin token" in err and READ_TOKEN not in err
    assert tg("experiments", "show", "nope/../x", *url) == 1
    assert "404" in capsys.readouterr().err
    assert tg("experiments", "audit", "exp-ab", "--count", "0", *url) == 2
    assert tg("experiments", "list", "--url", "ftp://x") == 2
    assert tg("experiments", "list", "--url", "http://127.0.0.1:9") == 1
    assert "no answer" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text(ADMIN_TOKEN + "\n")
    assert tg("experiments", "pause", "exp-ab", "--reason", "x", "--token-file", str(token),
              *url) == 0  # fmt: skip
    assert tg("experiments", "list", "--token-file", str(tmp_path / "missing"), *url) == 2
    monkeypatch.setenv("TUNEGATE_ADMIN_TOKEN", ADMIN_TOKEN)
    assert tg("experiments", "create", str(token), *url) == 2  # not a mapping
    assert "expected one experiment" in capsys.readouterr().err


def test_create_edit_delete_from_files(
    proxy_factory: Any, as_admin: None, capsys: Any, tmp_path: Path
) -> None:
    spec = tmp_path / "exp.yaml"
    with proxy_factory([experiment("seeded")], **LIVE) as p:
        url = ("--url", p.url)
        spec.write_text(yaml.safe_dump(experiment("cli-made")))
        assert tg("experiments", "create", str(spec), "--json", *url) == 0
        assert _out(capsys)["definition_version"] == 1
        assert tg("experiments", "create", str(spec), *url) == 1  # exists: 409
        spec.write_text(yaml.safe_dump(experiment("cli-made", ab_weight=3)))
        assert tg("experiments", "edit", "cli-made", str(spec), *url) == 2  # the API's 400
        assert "ab_weight" in capsys.readouterr().err
        spec.write_text(yaml.safe_dump(experiment("cli-made", mirror_rate=0.5)))
        assert tg("experiments", "edit", "cli-made", str(spec), "--json", *url) == 0
        assert _out(capsys)["config"]["mirror_rate"] == 0.5
        assert tg("experiments", "edit", "cli-made", str(spec), "--expected-version", "1",
                  *url) == 1  # fmt: skip
        assert tg("experiments", "delete", "cli-made", *url) == 0
        assert tg("experiments", "show", "cli-made", *url) == 1
