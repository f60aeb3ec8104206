"""The demo's errors.

TunegateError
└── DemoError   a demo step could not finish (a model did not train, pairs did not arrive, ...)
"""

from __future__ import annotations

from tunegate.errors import TunegateError

__all__ = ["DemoError"]


class DemoError(TunegateError):
    """A step of the demo could not finish; the message says which and why."""
