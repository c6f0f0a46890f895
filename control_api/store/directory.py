"""The store's side of ``server.ingest.ports.StreamDirectory``: keys, sessions, state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import hash_secret, new_id
from control_api.store.models import LiveStream, StreamSession
from server.ingest.ports import StreamGrant


class StoreDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(LiveStream).where(LiveStream.stream_key_hash == hash_secret(stream_key))
            )
        if row is None:
            return None
        return StreamGrant(
            stream_id=row.id,
            environment_id=row.environment_id,
            enabled=row.enabled,
            reconnect_window_seconds=row.reconnect_window_seconds,
            srt_passphrase=row.srt_passphrase,
        )

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        session_id = new_id("ses")
        async with self._sessions.begin() as s:
            stream = await s.get(LiveStream, stream_id)
            if stream is None:
                raise LookupError(stream_id)
            s.add(
                StreamSession(
                    id=session_id,
                    stream_id=stream_id,
                    environment_id=stream.environment_id,
                    protocol=protocol,
                    remote_addr=remote,
                    started_at=at,
                    bytes_in=0,
                )
            )
            stream.state = "connecting"
            stream.ended_at = None
            stream.error_reason = None
        return session_id

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(LiveStream)
                .where(LiveStream.id == stream_id)
                .values(state="live", started_at=at, ended_at=None)
            )

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int
    ) -> None:
        async with self._sessions.begin() as s:
            await s.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id)
                .values(ended_at=at, bytes_in=bytes_in)
            )
            await s.execute(
                update(LiveStream)
                .where(LiveStream.id == stream_id)
                .values(state="ended", ended_at=at)
            )
