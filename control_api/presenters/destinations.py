"""How a destination is shown: its row plus the push manager's live snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from control_api.schemas.destinations import DestinationOut, DestinationStatusOut
from control_api.store.models import Destination
from server.push.manager import PushManager
from server.push.status import DISABLED, IDLE, PushState


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def destination_out(row: Destination, push: PushManager) -> DestinationOut:
    snap = push.status(row.stream_id, row.id) or (IDLE if row.enabled else DISABLED)
    state = PushState.DISABLED if not row.enabled else snap.state
    return DestinationOut(
        destination_id=row.id,
        stream_id=row.stream_id,
        name=row.name,
        url=row.url,
        enabled=row.enabled,
        rendition=row.rendition,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=DestinationStatusOut(
            state=state.value,
            last_error=snap.last_error,
            connected_at=_time(snap.connected_at),
            bytes_sent=snap.bytes_sent,
            reconnects=snap.reconnects,
            dropped_frames=snap.dropped_frames,
            next_retry_at=_time(snap.next_retry_at),
        ),
    )
