"""`tunegate judge calibrate --labels EXP`: the console's human labels as calibration pairs."""

from __future__ import annotations

import orjson
import pytest
import redis

from tests.judge.cli_entry import main as cli
from tests.judge.helpers import EXP
from tests.judge.test_drill import write_config
from tests.proxy.console_data import seed
from tunegate import keys
from tunegate.records import HumanLabel, Winner, encode


def _label(client: redis.Redis, pair_id: str, stream_id: str, winner: Winner) -> None:
    label = HumanLabel(pair_id=pair_id, pair_stream_id=stream_id, experiment=EXP, winner=winner)
    client.xadd(keys.labels(EXP), encode(label))  # type: ignore[arg-type]  # redis-py's field type is invariant


def test_labels_calibrate_the_longer_judge_and_show_its_length_bias(tmp_path, redis_url, capsys):
    pairs = seed(redis_url, EXP, 12)
    client = redis.Redis.from_url(redis_url)
    try:
        for pair in pairs[:9]:  # people prefer the control's short answer on pairs 0..8
            _label(client, pair.id, f"{int(pair.time * 1000)}-0", Winner.CONTROL)
        _label(client, pairs[9].id, f"{int(pairs[9].time * 1000)}-0", Winner.TIE)
        _label(client, "gone", "1-0", Winner.CANDIDATE)  # its pair was trimmed
        client.xadd(keys.labels(EXP), {"v": "1", "json": "{not json"})
    finally:
        client.close()
    config = write_config(tmp_path / "c.yaml", redis_url, None)
    code = cli(["judge", "calibrate", "--config", str(config), "--labels", EXP,
                "--judge", "longer", "--json"])  # fmt: skip
    assert code == 0
    report = orjson.loads(capsys.readouterr().out)
    # pair 0's control failed (unusable), pair 3's JSON answers have one length: tie, wrong
    assert report["n"] == 8 and report["tie_labels"] == 1
    assert report["unusable_labels"] == 2 and report["unreadable_labels"] == 1
    assert report["accuracy"] == 0.0 and report["longer_preference"] == 1.0


def test_labels_of_an_unknown_experiment_or_none_exit_2(tmp_path, redis_url, capsys):
    config = write_config(tmp_path / "c.yaml", redis_url, None)
    assert cli(["judge", "calibrate", "--config", str(config), "--labels", "nope",
                "--judge", "longer"]) == 2  # fmt: skip
    assert "no experiment named 'nope'" in capsys.readouterr().err
    assert cli(["judge", "calibrate", "--config", str(config), "--labels", EXP,
                "--judge", "longer"]) == 2  # fmt: skip
    assert "no labelled pairs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # neither source: argparse's usage error
        cli(["judge", "calibrate", "--config", str(config)])
    assert usage.value.code == 2
