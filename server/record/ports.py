"""What the recorder needs from the control plane, declared here, implemented there.

The media plane writes files; the library (media items, sessions, webhooks) belongs
to the control plane, which the composition root hands in as a ``RecordingCatalog``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class FinishedRecording:
    """One session's recording, closed on disk: ``parts`` in order, each a playable
    fragmented MP4 (a codec or resolution change starts a new part)."""

    stream_id: str
    session_id: str
    environment_id: str
    started_at: datetime
    directory: Path
    parts: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class RecordingFailure:
    """A session's recording stopped (a write failed, the disk is full) or was refused
    (too little free space); ingest, HLS and destinations go on without it."""

    stream_id: str
    session_id: str
    environment_id: str
    reason: str


class RecordingCatalog(Protocol):
    async def recording_finished(self, recording: FinishedRecording) -> None:
        """Turn the files into media items; the directory is the catalog's from now on."""

    def recording_failed(self, failure: RecordingFailure) -> None:
        """Tell whoever watches (webhooks); called on the loop, must not wait."""
