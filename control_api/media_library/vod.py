"""The library as the VOD service's catalog, and the service's lifecycle on the app.

``server.vod`` serves ``/vod/`` without knowing the database; this answers its one
question ("what is this media id") from the store, so the HTTP app can mount it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from control_api.media_library.files import MediaFiles
from control_api.store import Store
from server.vod.service import VodItem, VodService


class LibraryCatalog:
    def __init__(self, store: Store, files: MediaFiles) -> None:
        self._store = store
        self._files = files

    async def vod_item(self, media_id: str) -> VodItem | None:
        row = await self._store.media.by_id(media_id)
        if row is None:
            return None
        mp4 = self._files.path(row.mp4_path) if row.mp4_path else None
        return VodItem(
            media_id=row.id,
            status=row.status,
            private=row.playback_policy != "public",
            source=mp4 or self._files.path(row.path),
            mp4=mp4,
        )


def vod_lifecycle(
    service: VodService, store: Store
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Load the playback signing key before serving; stop the worker threads after."""

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        service.playback_key = await store.playback_signing_key()
        try:
            yield
        finally:
            service.close()

    return lifecycle
