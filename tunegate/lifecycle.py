"""AsyncResource: the `async with` protocol every long-lived component shares.

A component starts on enter (override ``__aenter__`` when it has work to do there) and drains on
exit by awaiting its ``aclose()``, which stays safe to call twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource(ABC):
    """Base of the long-lived components: ``async with`` enters, ``aclose()`` drains."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Stop and release everything; idempotent."""
