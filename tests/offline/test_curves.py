"""Training-curve diagnosis from a trainer_state.json and from a real TensorBoard event file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.offline.curves import diagnose, read_log
from tunegate.errors import ConfigError

TRAIN = [(s, 2.0 - 0.01 * s) for s in range(10, 201, 10)]  # falls all along
EVAL_U = [(40, 1.9), (80, 1.7), (120, 1.65), (160, 1.72), (200, 1.8)]  # best at 120, rises after


def _trainer_state(path: Path, evals, best: str | None = None) -> Path:
    history = [{"loss": v, "step": s, "epoch": s / 200} for s, v in TRAIN]
    history += [{"eval_loss": v, "step": s, "eval_runtime": 1.0} for s, v in evals]
    history.sort(key=lambda e: e["step"])
    state = {"global_step": 200, "log_history": history, "best_model_checkpoint": best}
    path.write_bytes(orjson.dumps(state))
    return path


def test_trainer_state_overfitting_gap_and_best_checkpoint(tmp_path):
    log = read_log(_trainer_state(tmp_path / "trainer_state.json", EVAL_U, "out/checkpoint-120"))
    assert log.best_step == 120 and log.last_step == 200 and len(log.train) == 20
    d = diagnose(log, k=2)
    assert d.overfitting and d.rising_since == 120
    assert d.gap == pytest.approx(1.8 - (2.0 - 0.01 * 200))
    assert d.best_step == 120 and d.best_eval_loss == 1.65 and d.evaluated_step == 200
    assert any("not the best-validation one (step 120" in w for w in d.warnings)
    # three rises are needed with k=3: only two happened
    assert not diagnose(log, k=3).overfitting
    # evaluating the best checkpoint: no warning about it
    assert not any("best-validation" in w for w in diagnose(log, k=2, evaluated_step=120).warnings)
    # the folder works too
    assert read_log(tmp_path).eval == log.eval


def test_no_overfitting_when_both_losses_fall_or_training_loss_rises_too(tmp_path):
    falling = [(40, 1.9), (80, 1.7), (120, 1.6), (160, 1.5), (200, 1.45)]
    d = diagnose(read_log(_trainer_state(tmp_path / "a.json", falling)), k=2)
    assert not d.overfitting and d.best_step == 200 and d.warnings == []
    from analysis.offline.curves import TrainingLog

    both_rise = TrainingLog(train=[(s, 1 + 0.01 * s) for s in range(0, 201, 10)], eval=EVAL_U)
    assert not diagnose(both_rise, k=2).overfitting  # divergence, not overfitting
    no_eval = diagnose(TrainingLog(train=TRAIN, eval=[]))
    assert no_eval.gap is None and "no validation loss" in no_eval.warnings[0]


def test_tensorboard_event_file_from_summary_writer(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(tmp_path / "run")) as writer:
        for step, value in TRAIN:
            writer.add_scalar("train/loss", value, step)
        for step, value in EVAL_U:
            writer.add_scalar("eval/loss", value, step)
    log = read_log(tmp_path / "run")
    assert [s for s, _ in log.eval] == [s for s, _ in EVAL_U]
    assert [v for _, v in log.eval] == pytest.approx([v for _, v in EVAL_U])
    assert len(log.train) == 20 and log.last_step == 200
    d = diagnose(log, k=2)
    assert d.overfitting and d.best_step == 120
    event_file = next((tmp_path / "run").glob("events.out.tfevents.*"))
    assert read_log(event_file).eval == log.eval


def test_bad_logs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_log(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"not a trainer_state\.json"):
        read_log(tmp_path / "bad.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no loss scalars"):
        read_log(tmp_path / "empty")
    with pytest.raises(ValueError):
        diagnose(read_log(_trainer_state(tmp_path / "s.json", EVAL_U)), k=0)


@settings(max_examples=150, deadline=None)
@given(
    history=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats()
        | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["step", "loss", "eval_loss", "x"]), inner, max_size=4
            )
        ),
        max_leaves=12,
    )
)
def test_hostile_trainer_state_is_a_log_or_a_config_error(tmp_path_factory, history):
    path = tmp_path_factory.mktemp("state") / "trainer_state.json"
    path.write_bytes(orjson.dumps({"log_history": history}, option=orjson.OPT_SERIALIZE_NUMPY))
    try:
        log = read_log(path)
    except ConfigError:
        return
    diagnose(log)  # whatever it read, the diagnosis runs
