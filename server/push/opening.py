"""What both publishers (RTMP and SRT) share: opening, closing, errors, flow control.

``connect(...)`` returns a :class:`Connecting`, usable as ``pub = await connect(...)``
and as ``async with connect(...) as pub``; a publisher is itself an async context
manager that closes (unpublishes) on exit. Each protocol adapter keeps its link state
(first error, start future, write pause) in a :class:`LinkState`, and each publisher
reads it through :class:`Publishing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar


class Closable(Protocol):
    async def close(self, grace: float = ...) -> None: ...


P = TypeVar("P", bound=Closable)
T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def _retrieve(future: asyncio.Future[T]) -> None:
    if not future.cancelled():
        future.exception()


class LinkState(Generic[T, E]):
    """One connection's outcome as the publisher awaits it: ``started`` resolves when
    publishing may begin (or fails with the first error), ``error`` keeps that first
    error, and ``wait_writable`` blocks while the transport asked us to pause."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.started: asyncio.Future[T] = loop.create_future()
        self.started.add_done_callback(_retrieve)  # a late failure is not "never retrieved"
        self.lost: asyncio.Future[None] = loop.create_future()
        self.error: E | None = None
        self.paused = False
        self.finishing = False  # set by the publisher's close()
        self._drain_waiter: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    def _set_error(self, error: E) -> None:
        """Keep the first error (the real cause); later ones are its consequences."""
        if self.error is None:
            self.error = error
        if not self.started.done():
            self.started.set_exception(self.error)
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_writable(self) -> None:
        while self.paused and self.error is None:
            waiter = self._drain_waiter
            if waiter is None:
                waiter = self._drain_waiter = self.loop.create_future()
            await asyncio.shield(waiter)


class Publishing(Generic[E]):
    """What both publishers do alike once open: report the link's state, refuse to
    send on a dead or closed link or past the hard write-buffer bound (an error of
    the protocol's own class, :attr:`failure`), wait for room, and close on leaving
    ``async with``."""

    failure: type[E]

    def __init__(self, protocol: LinkState[Any, E], max_write_buffer: int) -> None:
        self._protocol = protocol
        self._max_write_buffer = max_write_buffer
        self._closing = False

    @property
    def write_buffer_size(self) -> int:
        """Bytes the transport has not yet passed to the kernel."""
        raise NotImplementedError

    @property
    def writable(self) -> bool:
        """False while the transport is above its high-water mark (``drain()`` would wait)."""
        return not self._protocol.paused and self._protocol.error is None

    @property
    def closed(self) -> bool:
        return self._closing or self._protocol.error is not None

    @property
    def error(self) -> E | None:
        """Why the connection ended, if it did."""
        return self._protocol.error

    def _check(self) -> None:
        error = self._protocol.error
        if error is not None:
            raise error
        if self._closing:
            raise self.failure("publisher is closed")
        if self.write_buffer_size > self._max_write_buffer:
            raise self.failure(
                f"more than {self._max_write_buffer} bytes queued: the caller must drain()"
            )

    async def drain(self) -> None:
        """Wait until the transport is below its high-water mark; raises if the
        connection failed meanwhile."""
        await self._protocol.wait_writable()
        error = self._protocol.error
        if error is not None:
            raise error

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
