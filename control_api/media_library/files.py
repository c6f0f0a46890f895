"""Where the library's bytes live: ``<data_dir>/media/<environment id>/<media id>``.

Files are named by id, never by the user's file name, and carry no extension: the
prober recognises formats by content, so a name cannot steer it (FFmpeg picks some
demuxers by extension alone) and cannot escape the directory.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

PART_SUFFIX = ".part"
# Present while a PATCH with Upload-Checksum writes: bytes it left behind after a crash
# cannot be verified and must go (without one, they are kept). See Uploads.recover.
CHECKSUM_PENDING_SUFFIX = ".checksum-pending"


class MediaFiles:
    def __init__(self, data_dir: Path) -> None:
        self.root = (data_dir / "media").resolve()

    def path(self, relative: str) -> Path:
        """Absolute path of a stored relative path; refuses anything that leaves the root."""
        full = (self.root / relative).resolve()
        if not full.is_relative_to(self.root) or full == self.root:
            raise ValueError(f"media path {relative!r} is outside the media directory")
        return full

    def part(self, relative: str) -> Path:
        """Where a URL import downloads before the file is complete."""
        return self.path(relative + PART_SUFFIX)

    async def remove(self, relative: str) -> None:
        await asyncio.to_thread(_unlink, self.path(relative))

    async def remove_part(self, relative: str) -> None:
        await asyncio.to_thread(_unlink, self.part(relative))

    async def size(self, relative: str) -> int | None:
        return await asyncio.to_thread(_size, self.path(relative))

    def _pending(self, relative: str) -> Path:
        return self.path(relative + CHECKSUM_PENDING_SUFFIX)

    async def mark_checksum_pending(self, relative: str) -> None:
        await asyncio.to_thread(_create_durably, self._pending(relative))

    async def checksum_pending(self, relative: str) -> bool:
        return await asyncio.to_thread(self._pending(relative).exists)

    async def clear_checksum_pending(self, relative: str) -> None:
        await asyncio.to_thread(_unlink, self._pending(relative))


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _create_durably(path: Path) -> None:
    """An empty file whose existence survives a power cut (the directory is synced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))
    directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
