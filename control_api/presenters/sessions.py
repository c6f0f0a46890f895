"""How an ingest session is shown; a live one counts the bytes received so far."""

from __future__ import annotations

from control_api.schemas.live_streams import SessionOut
from control_api.store.models import StreamSession


def session_out(row: StreamSession, live_bytes: int | None = None) -> SessionOut:
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
    )
