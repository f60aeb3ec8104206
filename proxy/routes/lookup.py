"""What the admin routes share: find an experiment (404), read its live state, map store errors.

A route wraps its Redis work in :func:`store` so an unreachable Redis is a 503 and a record that
does not decode is a 503 naming it, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from proxy.errors import Unavailable, UnknownModel
from proxy.experiments import config_state
from proxy.runtime import Runtime
from tunegate.errors import RecordError, StoreUnavailable
from tunegate.experiments import ExperimentConfig
from tunegate.records import ExperimentState
from tunegate.state import read_state

__all__ = ["definition_version", "experiment_config", "experiment_view", "live_state", "store"]


@contextmanager
def store(what: str) -> Iterator[None]:
    """StoreUnavailable -> 503 "<what> unavailable"; RecordError -> 503 naming the record."""
    try:
        yield
    except StoreUnavailable as exc:
        raise Unavailable(f"{what} unavailable") from exc
    except RecordError as exc:
        raise Unavailable(f"{what}: a stored record is unreadable: {exc}") from exc


def experiment_config(rt: Runtime, name: str) -> ExperimentConfig:
    cfg = rt.experiment(name)
    if cfg is None:
        raise UnknownModel(f"no experiment named '{name}'")
    return cfg


async def live_state(rt: Runtime, cfg: ExperimentConfig) -> ExperimentState:
    """The state hash in Redis, else the config's initial state (version 0)."""
    assert rt.redis is not None
    with store("state store"):
        state = await read_state(rt.redis, cfg.name)
    return state if state is not None else config_state(cfg)


def experiment_view(
    rt: Runtime, cfg: ExperimentConfig, state: ExperimentState
) -> dict[str, object]:
    """An experiment as the admin API shows it; ``definition_version`` 0: from the file."""
    return {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "definition_version": definition_version(rt, cfg.name),
        "state": state.model_dump(mode="json"),
    }


def definition_version(rt: Runtime, name: str) -> int:
    return rt.table.definition_versions.get(name, 0) if rt.table is not None else 0
