"""The one asyncio piece of the HLS core: wake every waiter when the packager changes.

The segmenter calls ``notify`` from its ``on_change`` callback (on the event loop
thread); HTTP handlers holding a blocking playlist reload or streaming a part that is
still being written ``await wait(within)`` and then look again.
"""

from __future__ import annotations

import asyncio
import contextlib


class ChangeSignal:
    """A broadcast edge: ``wait`` returns at the next ``notify`` or after ``within`` seconds."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        """Wake everyone waiting now; later waiters wait for the next notify."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, within: float | None = None) -> bool:
        """True when notified, False when ``within`` seconds passed first."""
        event = self._event
        if within is not None and within <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
            return True
        return False
