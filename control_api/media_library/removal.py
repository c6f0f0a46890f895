"""Deleting a media item: the row first, then every file it may have.

The row goes first so that nothing can pick the item up again; its files follow. Work
still running on the item (a probe, the MP4 remux) finds the row gone when it tries to
record its result and removes what it made itself (``Processor.process``), so neither
order of the two leaves a file behind.
"""

from __future__ import annotations

from control_api.media_library.files import MediaFiles
from control_api.store import Store
from control_api.store.models import Media


async def delete_item(
    store: Store, files: MediaFiles, environment_id: str, media_id: str
) -> Media | None:
    """The deleted row, or None when there is no such item in the environment. The item
    leaves every channel queue with it (a queue entry never points at nothing)."""
    await store.queue.forget_media(environment_id, media_id)
    row = await store.media.delete(environment_id, media_id)
    if row is None:
        return None
    await files.remove(row.path)
    await files.remove_part(row.path)
    if row.mp4_path and row.mp4_path != row.path:
        await files.remove(row.mp4_path)
    return row
