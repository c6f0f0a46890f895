"""One session's recording: fragmented MP4 files written by a thread.

Where it can, the recording writes what the stream's live HLS segmenter already muxed
(its init segment, then every finished LL-HLS part): no frame is muxed twice. That
takes one configuration that HLS carries in fMP4 with parts no longer than a
recording's fragment. Otherwise (TS segments, no parts, a codec only files carry such
as AV1 or Opus, a second configuration in the session, no HLS) it reads the bus like
HLS and push do and muxes itself, from the latest keyframe on, into a new file.

A recorder that falls behind (slow disk) loses media to the next keyframe, counted,
and the publisher never waits. A failed write stops this recording only: what was
written so far is handed on; ingest, HLS and destinations go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path

from server.bus import EndOfStream, Reader, Stream
from server.hls.buffer import Data
from server.hls.segmenter import Segmenter
from server.hls.writer import SegmentWriter
from server.logfields import media_fields
from server.media.fmp4 import SUPPORTED_CODECS
from server.media.frame import TIMEBASE, CodecConfig, TrackKind
from server.settings import RecordSettings

from .disk import DiskWriter, Opener
from .manifest import MANIFEST, manifest_bytes, part_name
from .muxer import NewFile, RecordMuxer, recordable
from .ports import FinishedRecording
from .samples import sample_count

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
        segmenter: Segmenter | None = None,
    ) -> None:
        """``segmenter``: the stream's live HLS segmenter, whose output this recording
        copies while it can (it must not have been fed yet)."""
        self.stream_id = stream_id
        self.session_id = session_id
        self.environment_id = environment_id
        self.started_at = started_at
        self.directory = directory
        self._on_failure = on_failure
        self._stream = stream
        self._settings = settings
        self._reader: Reader | None = None
        self._muxer: RecordMuxer | None = None
        self._disk = DiskWriter(executor, opener, settings.queue_max_bytes, self._failed)
        self._batch = settings.batch_interval
        self.failure: str | None = None
        self._files = 0
        self._begun = False
        # copying the segmenter: its configs so far, parts skipped to the next keyframe
        self._segmenter = segmenter
        self._configs: dict[TrackKind, CodecConfig] = {}
        self._skipping = False
        self._copy_dropped = 0
        self._wake = asyncio.Event()  # copying is over: ended, failed or muxing now
        if segmenter is None:
            self._read_bus()
        else:
            segmenter.tap = self

    @property
    def bytes_written(self) -> int:
        """Bytes on disk so far (what the writer thread has finished writing)."""
        return self._disk.written

    @property
    def dropped_frames(self) -> int:
        """Frames lost to a slow disk (bus, or parts not copied) or unusable for the
        file (muxer)."""
        dropped = self._copy_dropped
        if self._reader is not None:
            dropped += self._reader.dropped_frames
        if self._muxer is not None:
            dropped += self._muxer.dropped
        return dropped

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
        self._detach()
        if self._reader is not None:
            self._reader.close()  # off the bus now (a waiting next() returns the end)
        self._on_failure(self.failure)

    async def run(self) -> FinishedRecording | None:
        """Record until the session ends (or the disk fails); the files written, if any."""
        try:
            self._begin()
            if self._reader is None:
                await self._wake.wait()
            if self._reader is not None and self.failure is None:
                await self._record()
        finally:
            self._detach()
            if self._reader is not None:
                self._reader.close()
            await self._disk.finish()
        parts = tuple(self.directory / part_name(i) for i in range(self._files))
        return self._finished(parts)

    def _begin(self) -> None:
        """The directory and its manifest, before any media (once)."""
        if self._begun:
            return
        self._begun = True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._failed(exc)
            return
        manifest = manifest_bytes(
            self.stream_id, self.session_id, self.environment_id, self.started_at
        )
        self._disk.open(self.directory / MANIFEST)
        self._disk.write((manifest,))

    def _new_file(self, init: bytes) -> None:
        self._disk.open(self.directory / part_name(self._files))
        self._disk.write((init,))
        self._files += 1

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
        assert reader is not None
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
        assert muxer is not None and reader is not None
        while (item := reader.next_nowait()) is not None:
            for output in muxer.feed(item):
                if isinstance(output, NewFile):
                    self._new_file(output.init)
                else:
                    disk.write(output)
            if isinstance(item, EndOfStream):
                return True
        return False

    def _read_bus(self) -> None:
        """Mux from the bus from here on (its latest keyframe): a new file."""
        self._detach()
        settings = self._settings
        self._reader = self._stream.reader("record", "record")
        self._muxer = RecordMuxer(
            round(settings.fragment_seconds * TIMEBASE), round(settings.track_wait * TIMEBASE)
        )
        self._wake.set()

    def _detach(self) -> None:
        segmenter, self._segmenter = self._segmenter, None
        if segmenter is not None and segmenter.tap is self:
            segmenter.tap = None
        self._wake.set()

    # ------------------------------------------------------------ copying HLS (SegmentTap)

    def tap_config(self, configs: Mapping[TrackKind, CodecConfig]) -> None:
        self._configs = dict(configs)
        if any(c.codec not in SUPPORTED_CODECS for c in recordable(self._configs)):
            self._read_bus()  # HLS leaves out a track the file carries

    def tap_init(self, writer: SegmentWriter, init: bytes | None) -> None:
        if self._files or init is None or not self._copyable(writer):
            self._read_bus()
            return
        self._begin()
        if self.failure is None:
            self._new_file(init)

    def _copyable(self, writer: SegmentWriter) -> bool:
        """The segmenter's output is what this file must hold, cut finely enough."""
        segmenter = self._segmenter
        part = segmenter.part_target if segmenter is not None else None
        return (
            writer.extension == "m4s"
            and part is not None
            and part <= self._settings.fragment_seconds
            and writer.configs == recordable(self._configs)
        )

    def tap_part(self, pieces: tuple[Data, ...], independent: bool) -> None:
        """Hand the part over, unless the disk is behind: then parts are skipped up to
        the next that starts with a keyframe (their frames counted as dropped)."""
        if not self._files or self.failure is not None:
            return
        if self._disk.full or (self._skipping and not independent):
            self._skipping = True
            self._copy_dropped += sample_count(pieces)
            return
        self._skipping = False
        self._disk.write(pieces)

    def tap_end(self) -> None:
        self._detach()
