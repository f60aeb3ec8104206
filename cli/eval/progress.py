"""Progress of an evaluation: rich bars on a terminal, one line per stage otherwise (CI logs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Stage", "StageProgress"]


@dataclass(slots=True)
class Stage:
    """One stage's counter; ``advance`` moves its bar (or just counts, off a terminal)."""

    name: str
    total: int
    progress: Progress | None
    task: TaskID | None = None
    done: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def advance(self, note: str | None = None) -> None:
        self.done += 1
        if note is not None:
            self.notes[note] = self.notes.get(note, 0) + 1
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


class StageProgress:
    """Stages of one run; bars when the console is a terminal."""

    def __init__(self, console: Console, existing: Progress | None = None) -> None:
        self.console = console
        self._progress: Progress | None = existing  # a caller's bars (one live display only)
        self._own = existing is None
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> StageProgress:
        if self._own and self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own and self._progress is not None:
            self._progress.stop()

    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[Stage]:
        stage = Stage(name, total, self._progress)
        if self._progress is not None:
            # ``note``: a caller's bars (the demo's) may show a note column
            stage.task = self._progress.add_task(name, total=total or None, note="")
        else:
            self.console.print(f"{name}: {total} to do")
        started = time.perf_counter()
        yield stage
        self.seconds[name] = time.perf_counter() - started
        if self._progress is None:
            notes = "".join(f", {v} {k}" for k, v in sorted(stage.notes.items()))
            self.console.print(f"{name}: done {stage.done}{notes} in {self.seconds[name]:.1f}s")
