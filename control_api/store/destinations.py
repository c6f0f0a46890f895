"""Multistream destinations: stored per live stream, at most ``MAX_PER_STREAM``.

Also the store's side of ``server.push.ports.DestinationSource``: the push manager
asks here for a stream's destinations with their secrets put back into the URL.
The stream key and SRT passphrase are stored in clear because they must be sent to
the platform; they never leave this module except inside that publish URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.models import Destination, LiveStream
from server.push.destination_url import publish_url, redacted
from server.push.ports import DestinationSpec

MAX_PER_STREAM = 10


class TooManyDestinations(Exception):
    """The stream already has ``MAX_PER_STREAM`` destinations."""


def to_spec(row: Destination) -> DestinationSpec:
    url = publish_url(row.url, row.stream_key, row.srt_passphrase)
    secrets = tuple(s for s in (row.stream_key, row.srt_passphrase) if s)
    return DestinationSpec(row.id, url, redacted(url), row.enabled, secrets, row.rendition)


class DestinationRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @staticmethod
    def _where(environment_id: str, stream_id: str) -> Any:
        return (Destination.environment_id == environment_id) & (Destination.stream_id == stream_id)

    async def list_for(self, environment_id: str, stream_id: str) -> list[Destination]:
        async with self._sessions() as s:
            rows = await s.scalars(
                select(Destination)
                .where(self._where(environment_id, stream_id))
                .order_by(Destination.created_at, Destination.id)
            )
            return list(rows)

    async def get(
        self, environment_id: str, stream_id: str, destination_id: str
    ) -> Destination | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(Destination).where(
                    self._where(environment_id, stream_id), Destination.id == destination_id
                )
            )

    async def create(
        self, environment_id: str, stream_id: str, fields: Mapping[str, Any]
    ) -> Destination:
        """Insert, then count inside the same transaction: two racing creates cannot
        both slip under the limit (the stream row is locked where the database can)."""
        now = datetime.now(UTC)
        row = Destination(
            id=new_id("dst"),
            environment_id=environment_id,
            stream_id=stream_id,
            created_at=now,
            updated_at=now,
            **fields,
        )
        async with self._sessions.begin() as s:
            await s.execute(
                select(LiveStream.id).where(LiveStream.id == stream_id).with_for_update()
            )
            s.add(row)
            await s.flush()
            count = await s.scalar(
                select(func.count())
                .select_from(Destination)
                .where(Destination.stream_id == stream_id)
            )
            if int(count or 0) > MAX_PER_STREAM:
                raise TooManyDestinations(stream_id)
        return row

    async def update(
        self, environment_id: str, stream_id: str, destination_id: str, fields: Mapping[str, Any]
    ) -> Destination | None:
        if fields:
            async with self._sessions.begin() as s:
                await s.execute(
                    update(Destination)
                    .where(self._where(environment_id, stream_id), Destination.id == destination_id)
                    .values(**fields, updated_at=datetime.now(UTC))
                )
        return await self.get(environment_id, stream_id, destination_id)

    async def delete(self, environment_id: str, stream_id: str, destination_id: str) -> bool:
        async with self._sessions.begin() as s:
            result = await s.execute(
                delete(Destination).where(
                    self._where(environment_id, stream_id), Destination.id == destination_id
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def destinations(self, stream_id: str) -> list[DestinationSpec]:
        """``DestinationSource``: every destination of a stream, for its pushers."""
        async with self._sessions() as s:
            rows = await s.scalars(
                select(Destination)
                .where(Destination.stream_id == stream_id)
                .order_by(Destination.created_at, Destination.id)
            )
            return [to_spec(row) for row in rows]
