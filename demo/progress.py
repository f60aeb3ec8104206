"""The demo's progress: rich bars on a terminal, one line per stage with elapsed time otherwise.

Off a terminal (a CI log, a pipe, ``--json``'s stderr) rich draws nothing until the end, so a
long training step would show no sign of life. :class:`LineProgress` keeps rich's task API (the
demo and the offline gate both drive it) and prints a line when a stage starts, at each quarter
of a counted stage, and when it finishes, each with the time since the run began.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["LineProgress", "Stopwatch", "demo_progress"]


class Stopwatch:
    """Wall-clock and CPU seconds (every thread of this process) since it was made."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def lap(self) -> tuple[float, float]:
        """(wall, cpu) seconds since the start."""
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


class LineProgress(Progress):
    """A rich ``Progress`` that draws nothing and prints one plain line per event instead."""

    def __init__(self, console: Console) -> None:
        super().__init__(console=console, disable=True)
        self._start = time.perf_counter()
        self._printed: dict[TaskID, int] = {}  # the last quarter printed per task
        self._notes: dict[TaskID, str] = {}  # the last note printed per task

    def _line(self, text: str) -> None:
        elapsed = time.perf_counter() - self._start
        self.console.print(f"[{elapsed:6.1f}s] {text}", markup=False, highlight=False)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task = super().add_task(description, *args, **kwargs)
        total = kwargs.get("total")
        self._printed[task] = 0
        self._line(f"{description}: started" + (f" ({total:.0f} to do)" if total else ""))
        return task

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        note = str(task.fields.get("note") or "")
        done = task.total is None or task.completed >= task.total
        if task.total:
            quarter = int(4 * min(task.completed, task.total) / task.total)
            if quarter > self._printed.get(task_id, 0):
                self._printed[task_id] = quarter
                counted = f"{task.completed:.0f}/{task.total:.0f}"
                self._line(f"{task.description}: {counted}" + (f" ({note})" if note else ""))
                self._notes[task_id] = note
                return
        # a finished stage closed with a note of its own ("trained", "16 pairs", ...)
        if done and note and self._notes.get(task_id) != note:
            self._notes[task_id] = note
            self._line(f"{task.description}: {note}")


def demo_progress(console: Console) -> Progress:
    """Bars when ``console`` is a terminal, else a :class:`LineProgress`."""
    if not console.is_terminal:
        return LineProgress(console)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
