"""The demo's plain progress lines off a terminal, and its simulated users' satisfaction."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console

from demo.progress import LineProgress, demo_progress
from demo.traffic import USER_HEADER, TrafficItem
from demo.users import Population, correctness


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_off_a_terminal_each_stage_prints_lines_with_the_elapsed_time():
    console, out = _console()
    progress = demo_progress(console)
    assert isinstance(progress, LineProgress)
    with progress:
        task = progress.add_task("train", total=8, note="")
        for step in range(1, 9):
            progress.update(task, completed=step, note=f"loss {1 / step:.3f}")
        progress.update(task, total=None, note="trained")
        burst = progress.add_task("judge pairs", total=None, note="")
        progress.update(burst, note="16 pairs")
    lines = out.getvalue().splitlines()
    assert all(re.match(r"^\[\s*\d+\.\ds\] ", line) for line in lines), lines
    texts = [line.split("] ", 1)[1] for line in lines]
    assert texts == [
        "train: started (8 to do)",
        "train: 2/8 (loss 0.500)",
        "train: 4/8 (loss 0.250)",
        "train: 6/8 (loss 0.167)",
        "train: 8/8 (loss 0.125)",
        "train: trained",
        "judge pairs: started",
        "judge pairs: 16 pairs",
    ]


def test_on_a_terminal_the_bars_are_rich_ones():
    console = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(demo_progress(console), LineProgress)


TRIAGE = {"product": "Vexa Edge", "error_code": "VE-404", "severity": "high", "team": "identity"}


def test_satisfaction_follows_the_share_of_right_fields_and_the_probe_key():
    ticket = TrafficItem("tickets", json.dumps(TRIAGE), prompt="t")
    assert correctness(ticket, json.dumps(TRIAGE)) == 1.0
    half = {**TRIAGE, "severity": "low", "team": "billing"}
    assert correctness(ticket, "Here: " + json.dumps(half) + " done") == 0.5
    # hostile or malformed answers score 0, never raise
    for answer in ("", "{not json", "[1, 2]", '{"product": ', "}{", "null"):
        assert correctness(ticket, answer) == 0.0
    probe = TrafficItem("probe", "Paris", prompt="capital?")
    assert correctness(probe, "The capital is Paris.") == 1.0
    assert correctness(probe, "Parisian") == 0.0


def test_every_user_asks_once_a_round_the_fresh_items_first_then_a_repeat():
    fresh = [TrafficItem("probe", "4", prompt=f"new{i}") for i in range(3)]
    asked = [TrafficItem("probe", "4", prompt=f"old{i}") for i in range(5)]
    population = Population(8)
    rounds = [population.round_traffic(fresh, asked, r) for r in (1, 2)]
    for new, again in rounds:
        users = [i.user for i in new + again]
        assert len(users) == len(set(users)) == 8  # one request per user a round
        assert [i.prompt for i in new] == [i.prompt for i in fresh]
        assert {i.prompt for i in again} <= {i.prompt for i in asked}  # repeats of earlier ones
    # sticky ids: the same eight users every round, the fresh items moving on to others
    assert {i.user for i in rounds[0][0] + rounds[0][1]} == {
        i.user for i in rounds[1][0] + rounds[1][1]
    }
    assert [i.user for i in rounds[0][0]] != [i.user for i in rounds[1][0]]
    assert rounds[0][0][0].headers()[USER_HEADER] == rounds[0][0][0].user
    assert USER_HEADER not in fresh[0].headers()
    # more fresh items than users: each still gets one, users repeat
    new, again = Population(2).round_traffic(fresh, asked, 1)
    assert len(new) == 3 and not again
