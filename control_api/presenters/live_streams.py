"""How a live stream is shown: URLs depend on the listeners' real ports (the endpoints)."""

from __future__ import annotations

from control_api.schemas.channels import ProfileOut
from control_api.schemas.live_streams import (
    Ingest,
    IngestHealth,
    Playback,
    RenditionHealth,
    StreamOut,
)
from control_api.store.models import LiveStream
from control_api.urls import Endpoints
from server.ingest.health import EncoderHealth
from server.transcode.transcoder import RenditionStats


def stream_out(row: LiveStream, ep: Endpoints, stream_key: str | None = None) -> StreamOut:
    ingest = Ingest(
        rtmp_url=ep.rtmp_url, rtmps_url=ep.rtmps_url, srt_url=ep.srt_url, whip_url=ep.whip_url
    )
    if stream_key is not None:
        ingest.stream_key = stream_key
        ingest.rtmp_full_url = f"{ep.rtmp_url}/{stream_key}"
        ingest.srt_full_url = ep.srt_full_url(stream_key)
    out = StreamOut(
        stream_id=row.id,
        edge_id=row.edge_id,
        name=row.name,
        state=row.state,
        quality=row.quality,
        low_latency=row.low_latency,
        recording=row.recording,
        reconnect_window_seconds=row.reconnect_window_seconds,
        playback_policy=row.playback_policy,
        plan=row.plan,
        region=row.region,
        enabled=row.enabled,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        error_reason=row.error_reason,
        ingest=ingest,
        playback=Playback(
            hls_url=ep.hls_url(row.edge_id),
            edge_id=row.edge_id,
            rtmp_url=ep.rtmp_play_url(row.edge_id),
            srt_url=ep.srt_play_url(row.edge_id),
            whep_url=ep.whep_url(row.edge_id),
        ),
    )
    if row.source == "queue":
        out.source = "queue"
        out.loop = row.loop
        out.scheduled_start, out.scheduled_end = row.scheduled_start, row.scheduled_end
        out.schedule_repeat = row.schedule_repeat  # type: ignore[assignment]
        out.profile = ProfileOut.model_validate(row.profile) if row.profile else None
    return out


def rendition_health(stats: RenditionStats) -> RenditionHealth:
    """A rendition's figures under the API's names."""
    return RenditionHealth.model_validate(stats, from_attributes=True)


def ingest_health(health: EncoderHealth) -> IngestHealth:
    """The media plane's figures under the API's names (its fields are the schema's,
    snake_case; the schema adds the camelCase aliases)."""
    return IngestHealth.model_validate(health, from_attributes=True)
