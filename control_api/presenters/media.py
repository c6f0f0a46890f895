"""How a media item is shown."""

from __future__ import annotations

from control_api.schemas.media import AudioInfo, MediaOut, VideoInfo
from control_api.store.models import Media


def media_out(row: Media) -> MediaOut:
    return MediaOut(
        media_id=row.id,
        name=row.name,
        folder_id=row.folder_id,
        tags=[t.name for t in row.tags],
        status=row.status,
        error=row.error,
        source=row.source,
        size_bytes=row.size_bytes,
        duration_seconds=row.duration_seconds,
        container=row.container,
        video=VideoInfo.model_validate(row.video) if row.video else None,
        audio=AudioInfo.model_validate(row.audio) if row.audio else None,
        created_at=row.created_at,
    )
