"""How a media item is shown."""

from __future__ import annotations

from control_api.schemas.media import AudioInfo, MediaOut, MediaPlayback, VideoInfo
from control_api.store.models import Media
from control_api.urls import Endpoints


def playback_out(row: Media, endpoints: Endpoints | None) -> MediaPlayback | None:
    if row.status != "ready" or endpoints is None:
        return None
    return MediaPlayback(
        hls_url=endpoints.vod_hls_url(row.id),
        mp4_url=endpoints.vod_mp4_url(row.id) if row.mp4_path else None,
    )


def media_out(row: Media, endpoints: Endpoints | None = None) -> MediaOut:
    """``endpoints`` gives the playback URLs (the listener's real port)."""
    return MediaOut(
        media_id=row.id,
        name=row.name,
        folder_id=row.folder_id,
        tags=[t.name for t in row.tags],
        status=row.status,
        error=row.error,
        source=row.source,
        stream_id=row.stream_id,
        session_id=row.session_id,
        size_bytes=row.size_bytes,
        duration_seconds=row.duration_seconds,
        container=row.container,
        video=VideoInfo.model_validate(row.video) if row.video else None,
        audio=AudioInfo.model_validate(row.audio) if row.audio else None,
        playback_policy=row.playback_policy,
        playback=playback_out(row, endpoints),
        created_at=row.created_at,
    )
