"""One shape for the app's background services: ``start``/``stop`` and an aiohttp
``cleanup_ctx`` entry that runs them around the app's life."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


class Service:
    """Subclasses start their tasks in ``start`` and stop them in ``stop``; the app
    factory appends ``service.lifecycle`` to ``app.cleanup_ctx``."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def lifecycle(self, _app: web.Application) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
