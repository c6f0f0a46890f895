"""tus uploads: length, durable offset, expiry, and the media item each one becomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.credentials import new_id
from control_api.store.folders import folder_exists
from control_api.store.models import Media, Upload


@dataclass(frozen=True, slots=True)
class NewUpload:
    length: int
    metadata_header: str
    filename: str
    folder_id: str | None


def media_path(environment_id: str, media_id: str) -> str:
    """Where an item's bytes live, relative to ``<data_dir>/media``."""
    return f"{environment_id}/{media_id}"


class UploadRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, environment_id: str, new: NewUpload, ttl: timedelta) -> Upload:
        now = datetime.now(UTC)
        media_id = new_id("med")
        row = Upload(
            id=new_id("upl"),
            environment_id=environment_id,
            media_id=media_id,
            length=new.length,
            received=0,
            metadata_header=new.metadata_header,
            filename=new.filename,
            folder_id=new.folder_id,
            path=media_path(environment_id, media_id),
            created_at=now,
            expires_at=now + ttl,
        )
        async with self._sessions.begin() as s:
            s.add(row)
        return row

    async def get(self, environment_id: str, upload_id: str) -> Upload | None:
        """The upload, unless unknown or expired unfinished (expired ones are gone to clients
        even before the sweep deletes them)."""
        async with self._sessions() as s:
            row = await s.scalar(
                select(Upload).where(
                    Upload.id == upload_id, Upload.environment_id == environment_id
                )
            )
        if row is None or (row.completed_at is None and row.expires_at <= datetime.now(UTC)):
            return None
        return row

    async def advance(self, upload_id: str, received: int, ttl: timedelta) -> datetime:
        """Record a durable offset; each stored chunk pushes the expiry out again."""
        expires = datetime.now(UTC) + ttl
        async with self._sessions.begin() as s:
            await s.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(received=received, expires_at=expires)
            )
        return expires

    async def complete(self, upload: Upload) -> Media:
        """Mark the upload complete and create its media item (``processing``) together."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as s:
            folder = upload.folder_id
            if folder is not None and not await folder_exists(s, upload.environment_id, folder):
                folder = None  # deleted while the upload ran: the item lands in the root
            media = Media(
                id=upload.media_id,
                environment_id=upload.environment_id,
                folder_id=folder,
                name=upload.filename[:200],
                status="processing",
                source="upload",
                filename=upload.filename,
                path=upload.path,
                size_bytes=upload.length,
                created_at=now,
                tags=[],
            )
            s.add(media)
            await s.execute(
                update(Upload)
                .where(Upload.id == upload.id)
                .values(received=upload.length, completed_at=now)
            )
        upload.received, upload.completed_at = upload.length, now
        return media

    async def delete(self, upload_id: str) -> None:
        async with self._sessions.begin() as s:
            await s.execute(delete(Upload).where(Upload.id == upload_id))

    async def expired(self, now: datetime) -> list[Upload]:
        """Unfinished uploads past their expiry, and finished ones past it (their rows only
        answer HEAD for a while; the bytes belong to the media item by then)."""
        async with self._sessions() as s:
            rows = await s.scalars(select(Upload).where(Upload.expires_at <= now))
            return list(rows)

    async def unfinished(self) -> list[Upload]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Upload).where(Upload.completed_at.is_(None))))
