"""The store's side of ``server.playout.ports.ChannelDirectory``: channels, their
queues and playout state, and the ``channel.item.*`` webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from control_api.media_library.files import MediaFiles
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.store.models import LiveStream
from server.bus import StreamGrant
from server.playout.ports import Channel, PlayoutState, Profile, QueueEntry
from server.playout.schedule import Schedule
from server.settings import PlayoutSettings


class StoreChannels:
    def __init__(
        self,
        store: Store,
        grants: StoreDirectory,
        files: MediaFiles,
        defaults: PlayoutSettings,
    ) -> None:
        self._store = store
        self._grants = grants
        self._files = files
        self._defaults = defaults

    def _channel(self, row: LiveStream | Row[Any]) -> Channel:
        """From the whole row, or from the columns the scheduler reads (``ChannelRepo.active``)."""
        given = row.profile or {}
        d = self._defaults
        return Channel(
            stream_id=row.id,
            environment_id=row.environment_id,
            enabled=row.enabled,
            loop=row.loop,
            profile=Profile(
                width=int(given.get("width", d.width)),
                height=int(given.get("height", d.height)),
                fps=int(given.get("fps", d.fps)),
                video_bitrate=int(given.get("videoBitrate", d.video_bitrate)),
                audio_bitrate=int(given.get("audioBitrate", d.audio_bitrate)),
            ),
            schedule=Schedule(row.scheduled_start, row.scheduled_end, row.schedule_repeat),  # type: ignore[arg-type]
            on=row.playout_on,
            window_start=row.playout_window_start,
            state=PlayoutState(row.playout_item_id, row.playout_position, row.playout_loops),
        )

    async def channel(self, stream_id: str) -> Channel | None:
        row = await self._store.channels.get(stream_id)
        return None if row is None else self._channel(row)

    async def channels(self) -> list[Channel]:
        return [self._channel(row) for row in await self._store.channels.active()]

    async def grant(self, stream_id: str) -> StreamGrant | None:
        return await self._grants.grant_for(stream_id)

    async def queue(self, stream_id: str) -> list[QueueEntry]:
        entries = []
        for item, media in await self._store.queue.entries(stream_id):
            if media.status != "ready":
                continue
            entries.append(
                QueueEntry(
                    item_id=item.id,
                    media_id=media.id,
                    path=self._files.path(media.path),
                    position=item.position,
                    duration=media.duration_seconds,
                )
            )
        return entries

    async def set_on(self, stream_id: str, on: bool, window_start: datetime | None) -> None:
        await self._store.channels.set_on(stream_id, on, window_start)

    async def save_state(self, stream_id: str, state: PlayoutState) -> None:
        await self._store.channels.save_state(stream_id, state.item_id, state.position, state.loops)

    async def item_started(self, stream_id: str, entry: QueueEntry) -> None:
        await self._announce("channel.item.started", stream_id, entry, None)

    async def item_failed(self, stream_id: str, entry: QueueEntry, reason: str) -> None:
        await self._announce("channel.item.failed", stream_id, entry, reason)

    async def _announce(
        self, kind: str, stream_id: str, entry: QueueEntry, reason: str | None
    ) -> None:
        row = await self._store.channels.get(stream_id)
        if row is None:
            return
        data = {"streamId": stream_id, "itemId": entry.item_id, "mediaId": entry.media_id}
        if reason is not None:
            data["error"] = reason
        self._store.events.emit(kind, row.environment_id, data)  # type: ignore[arg-type]
