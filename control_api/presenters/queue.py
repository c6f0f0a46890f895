"""How a channel's queue is shown: items with their media's name and duration."""

from __future__ import annotations

from control_api.schemas.channels import NowPlaying, QueueItemOut
from control_api.store.models import Media, QueueItem
from server.playout.service import OnAir


def queue_item_out(item: QueueItem, media: Media) -> QueueItemOut:
    return QueueItemOut(
        item_id=item.id,
        media_id=item.media_id,
        name=media.name,
        duration_seconds=media.duration_seconds,
        position=item.position,
    )


def now_playing_out(on_air: OnAir | None) -> NowPlaying | None:
    if on_air is None:
        return None
    return NowPlaying(
        item_id=on_air.item_id,
        media_id=on_air.media_id,
        position_seconds=round(on_air.position, 3),
        started_at=on_air.started_at,
    )
