"""Where the demo keeps what it trains, and how a trained model lands there: whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TRAINING_FILE", "cache_root", "offline_models", "saving"]

#: written beside a trained model: its config, final loss and example count
TRAINING_FILE = "tunegate-training.json"


def offline_models() -> None:
    """The environment every demo model load runs in: nothing from a model hub, no tokenizer
    threads, no library progress bars (the demo prints its own), OpenMP threads that sleep
    when idle. Set before torch and transformers load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    # torch's OpenMP threads spin while they wait for work, so on a shared machine each one
    # fights the other processes (and the proxy's own event loop) for its core: a decode step
    # of 32 rows took 650-1,700 ms beside two busy loops, 172-186 ms with passive waiting, at
    # 147 against 155 ms on a quiet machine
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cache_root(explicit: Path | None = None) -> Path:
    """``explicit``, else ``$XDG_CACHE_HOME/tunegate``, else ``~/.cache/tunegate``."""
    if explicit is not None:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tunegate"


@contextmanager
def saving(target: Path, training: Mapping[str, object] | None = None) -> Iterator[Path]:
    """Yield a scratch folder to save into; on success it becomes ``target`` in one rename.

    A crash or an exception leaves no half-written ``target`` that a later run would reuse.
    """
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        yield partial
        if training is not None:
            (partial / TRAINING_FILE).write_text(json.dumps(training))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(target)
