"""One session's recording: a bus reader feeding the muxer, files written by a thread.

It reads the bus like HLS and push do, so a recorder that falls behind (slow disk)
loses frames to the next keyframe, counted by the bus, and the publisher never waits.
A failed write stops this recording only: the reader is closed and what was written
so far is handed on; ingest, HLS and destinations go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path

from server.bus import EndOfStream, Stream
from server.logfields import media_fields
from server.media.frame import TIMEBASE
from server.settings import RecordSettings

from .disk import DiskWriter, Opener
from .manifest import MANIFEST, manifest_bytes, part_name
from .muxer import NewFile, RecordMuxer
from .ports import FinishedRecording

log = logging.getLogger("relaycast.record")

# With ``batch_interval`` 0 (a pass per frame), the seconds a pass waits at most for
# a frame: a quiet stream's reader is not polled in a busy loop.
_QUIET_WAIT = 1.0


class Recording:
    def __init__(
        self,
        stream: Stream,
        *,
        stream_id: str,
        session_id: str,
        environment_id: str,
        started_at: datetime,
        directory: Path,
        settings: RecordSettings,
        opener: Opener,
        executor: Executor,
        on_failure: Callable[[str], None],
    ) -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        self.environment_id = environment_id
        self.started_at = started_at
        self.directory = directory
        self._on_failure = on_failure
        self._reader = stream.reader("record", "record")
        self._muxer = RecordMuxer(
            round(settings.fragment_seconds * TIMEBASE), round(settings.track_wait * TIMEBASE)
        )
        self._disk = DiskWriter(executor, opener, settings.queue_max_bytes, self._failed)
        self._batch = settings.batch_interval
        self.failure: str | None = None

    @property
    def bytes_written(self) -> int:
        """Bytes on disk so far (what the writer thread has finished writing)."""
        return self._disk.written

    @property
    def dropped_frames(self) -> int:
        """Frames lost to a slow disk (bus) or unusable for the file (muxer)."""
        return self._reader.dropped_frames + self._muxer.dropped

    def _fields(self) -> dict[str, str]:
        return media_fields(self.stream_id, self.session_id)

    def _failed(self, error: OSError) -> None:
        reason = error.strerror or str(error) or type(error).__name__
        self.failure = f"recording stopped: writing to disk failed ({reason})"
        log.warning(
            "stream %s: %s; ingest, HLS and destinations go on",
            self.stream_id,
            self.failure,
            extra=self._fields(),
        )
        self._reader.close()  # off the bus now (a waiting next() returns the end)
        self._on_failure(self.failure)

    async def run(self) -> FinishedRecording | None:
        """Record until the session ends (or the disk fails); the files written, if any."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            manifest = manifest_bytes(
                self.stream_id, self.session_id, self.environment_id, self.started_at
            )
            self._disk.open(self.directory / MANIFEST)
            self._disk.write((manifest,))
            await self._record()
        except OSError as exc:  # the directory could not be made
            self._failed(exc)
        finally:
            self._reader.close()
            await self._disk.finish()
        parts = tuple(self.directory / part_name(i) for i in range(self._muxer.files))
        return self._finished(parts)

    def _finished(self, parts: tuple[Path, ...]) -> FinishedRecording | None:
        if not self.directory.exists():
            return None
        return FinishedRecording(
            stream_id=self.stream_id,
            session_id=self.session_id,
            environment_id=self.environment_id,
            started_at=self.started_at,
            directory=self.directory,
            parts=parts,
        )

    async def _record(self) -> None:
        """Take what the reader has queued, then let the next batch gather: one pass per
        ``batch_interval`` instead of one per frame (nothing here is in a hurry). The
        pass is woken by the publisher's first frame once the batch is due, in the loop
        turn that read it; its timer only fires when the publisher went quiet. A timer
        of its own would wake an otherwise idle loop (a context switch) five times a
        second per recorded stream."""
        disk, reader = self._disk, self._reader
        loop = asyncio.get_running_loop()
        while not disk.failed:
            await disk.room()
            if self._take():
                return
            due = loop.time() + self._batch
            await reader.offered(due, self._batch or _QUIET_WAIT)

    def _take(self) -> bool:
        """Mux and hand over every queued item; True once the end was taken."""
        disk, muxer, reader = self._disk, self._muxer, self._reader
        while (item := reader.next_nowait()) is not None:
            for output in muxer.feed(item):
                if isinstance(output, NewFile):
                    disk.open(self.directory / part_name(muxer.files - 1))
                    disk.write((output.init,))
                else:
                    disk.write(output)
            if isinstance(item, EndOfStream):
                return True
        return False
