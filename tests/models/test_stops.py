"""TextTracker: stop sequences across token boundaries, held-back tails, end token, length."""

from __future__ import annotations

from proxy.upstream.local.stops import TextTracker

PIECES = {0: "<end>", 1: "Hel", 2: "lo ", 3: "E", 4: "N", 5: "D", 6: "x", 7: "\ufffd"}


class PieceTokenizer:
    """Decodes ids by joining fixed pieces; id 0 is the special end token."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(PIECES[i] for i in ids if not (skip_special_tokens and i == 0))


def feed(tracker: TextTracker, ids: list[int]) -> list[str]:
    return [tracker.push(i) for i in ids]


def test_stop_split_across_tokens_is_never_shown():
    tracker = TextTracker(PieceTokenizer(), ["END"], {0})
    deltas = feed(tracker, [1, 2, 3, 4, 5])
    assert deltas == ["Hel", "lo ", "", "", ""]
    assert tracker.text == "Hello " and tracker.finish_reason == "stop"
    assert tracker.tokens == 5


def test_false_alarm_releases_the_held_tail():
    tracker = TextTracker(PieceTokenizer(), ["END"], {0})
    deltas = feed(tracker, [1, 3, 4, 6])
    assert deltas == ["Hel", "", "", "ENx"]
    assert [tracker.finish_reason] == [None]
    assert tracker.finish_length() == ""  # everything was already shown
    assert (tracker.text, tracker.finish_reason) == ("HelENx", "length")


def test_end_token_and_incomplete_character():
    tracker = TextTracker(PieceTokenizer(), [], {0})
    assert feed(tracker, [1, 7]) == ["Hel", ""]  # a half character waits for its next byte
    assert tracker.push(0) == ""
    assert (tracker.text, tracker.finish_reason, tracker.tokens) == ("Hel", "stop", 3)


def test_length_releases_everything_held():
    tracker = TextTracker(PieceTokenizer(), ["ENDING"], {0})
    assert feed(tracker, [1, 3, 4, 5]) == ["Hel", "", "", ""]
    assert tracker.finish_length() == "END"
    assert tracker.text == "HelEND"
