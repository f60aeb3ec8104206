"""bench.proxy.cost reads callgrind's per-dump totals, not its summary line.

After ``callgrind_control -d`` zeroes the counters, the dump callgrind writes at exit carries a
wrapped-around ``summary:`` (2**64 minus what was dumped before); only ``totals:`` is that dump's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.proxy.cost import _instructions


def test_totals_of_every_dump_are_summed(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out").write_text(
        "events: Ir\nsummary: 18446744073365761282\ntotals: 29196\n"
    )
    (tmp_path / "callgrind.out.1").write_text("events: Ir\nsummary: 343790334\ntotals: 343790334\n")
    assert _instructions(tmp_path) == 343790334 + 29196


def test_no_dump_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out").write_text("events: Ir\n")
    with pytest.raises(RuntimeError, match="no callgrind dump"):
        _instructions(tmp_path)
