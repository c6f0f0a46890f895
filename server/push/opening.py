"""How both publishers (RTMP and SRT) are opened and closed by their callers.

``connect(...)`` returns a :class:`Connecting`, usable as ``pub = await connect(...)``
and as ``async with connect(...) as pub``; a publisher is itself an async context
manager that closes (unpublishes) on exit. One implementation for both protocols.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar


class Closable(Protocol):
    async def close(self, grace: float = ...) -> None: ...


P = TypeVar("P", bound=Closable)


class ClosesOnExit:
    """``async with publisher:`` closes it on the way out, error or not."""

    async def close(self, grace: float = 5.0) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Connecting(Generic[P]):
    """Awaitable and an async context manager around a publisher being opened."""

    def __init__(self, opening: Coroutine[object, None, P]) -> None:
        self._opening = opening
        self._publisher: P | None = None

    def __await__(self) -> Generator[object, None, P]:
        return self._opening.__await__()

    async def __aenter__(self) -> P:
        self._publisher = await self._opening
        return self._publisher

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._publisher is not None:
            await self._publisher.close()
