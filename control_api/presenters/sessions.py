"""How an ingest session and a stream's viewers are shown; a live session counts the
bytes received and the viewers so far."""

from __future__ import annotations

from control_api.schemas.live_streams import CurrentViewers, SessionOut, Viewership
from control_api.store.models import StreamSession
from server.playback import ViewershipStats


def session_out(
    row: StreamSession, live_bytes: int | None = None, viewers: ViewershipStats | None = None
) -> SessionOut:
    """``viewers``: the media plane's figures while the session is live (the row gets
    them when it ends)."""
    duration = (row.ended_at - row.started_at).total_seconds() if row.ended_at else None
    return SessionOut(
        session_id=row.id,
        stream_id=row.stream_id,
        protocol=row.protocol,
        remote_address=row.remote_addr,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_seconds=duration,
        bytes_in=row.bytes_in if live_bytes is None else live_bytes,
        recording_media_id=row.recording_media_id,
        peak_viewers=viewers.peak_viewers if viewers is not None else row.peak_viewers,
        viewer_seconds=viewers.viewer_seconds if viewers is not None else row.viewer_seconds,
    )


def viewership_out(stats: ViewershipStats | None) -> Viewership:
    if stats is None:
        current = CurrentViewers(hls=0, rtmp=0, srt=0, webrtc=0, total=0)
        return Viewership(current=current, peak_viewers=0, total_views=0, viewer_seconds=0.0)
    current = CurrentViewers(
        hls=stats.hls, rtmp=stats.rtmp, srt=stats.srt, webrtc=stats.webrtc, total=stats.total
    )
    return Viewership(
        current=current,
        peak_viewers=stats.peak_viewers,
        total_views=stats.total_views,
        viewer_seconds=stats.viewer_seconds,
    )
