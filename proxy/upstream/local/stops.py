"""Turn generated token ids into text deltas, honouring stop sequences and the end token.

Streaming must never show text that a stop sequence later removes, nor half of a multi-byte
character: the tail that could still become a stop sequence (or ends in an incomplete UTF-8
sequence) is held back until the next token decides it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TextTracker"]

_REPLACEMENT = "\ufffd"


class TextTracker:
    """One row's generated text: push token ids, get back the text safe to show."""

    def __init__(self, tokenizer: Any, stop: list[str], end_ids: set[int]) -> None:
        self._tokenizer = tokenizer
        self._stop = [s for s in stop if s]
        self._end_ids = end_ids
        self._ids: list[int] = []
        self._emitted = 0  # characters of the decoded text already returned
        self.text = ""  # the final text once finished
        self.finish_reason: str | None = None

    @property
    def tokens(self) -> int:
        """Generated tokens so far, the end token included (OpenAI's completion_tokens)."""
        return len(self._ids)

    def push(self, token_id: int) -> str:
        """Add one token; return the new text that may be shown (maybe empty)."""
        self._ids.append(token_id)
        if token_id in self._end_ids:
            return self._finish(self._decode(self._ids[:-1]), "stop")
        text = self._decode(self._ids)
        start = max(0, self._emitted - max((len(s) for s in self._stop), default=0))
        cut = min((i for i in (text.find(s, start) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            return self._finish(text[:cut], "stop")
        safe = len(text) - self._held_back(text)
        if safe <= self._emitted:
            return ""
        delta = text[self._emitted : safe]
        self._emitted = safe
        return delta

    def finish_length(self) -> str:
        """Stop for max_tokens (or the context limit): release the held-back tail."""
        return self._finish(self._decode(self._ids), "length")

    def _finish(self, text: str, reason: str) -> str:
        self.text = text.rstrip(_REPLACEMENT) if reason == "stop" else text
        self.finish_reason = reason
        delta = self.text[self._emitted :]
        self._emitted = len(self.text)
        return delta

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def _held_back(self, text: str) -> int:
        """Characters at the end of ``text`` that must wait for the next token."""
        held = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(text)), held, -1):
                if text.endswith(stop[:size]):
                    held = size
                    break
        incomplete = len(text) - len(text.rstrip(_REPLACEMENT))
        return max(held, incomplete)
