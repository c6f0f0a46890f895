"""The recorder of the media plane: a ``StreamObserver`` that records the sessions of
streams with ``recording: true``.

Each recorded session gets a directory ``<root>/<stream id>/<session id>``; when the
session ends (the bus stream lives through the reconnect window, so a returning
encoder continues the same recording) the files go to the control plane's catalog.
Refusals (too little free space) and failures are logged and kept as the stream's
health warnings until its next session.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from server.bus import Stream, StreamGrant
from server.hls.segmenter import Segmenter
from server.logfields import media_fields
from server.settings import RecordSettings
from server.tasks import BackgroundTasks

from .disk import Opener, open_os_file
from .ports import RecordingCatalog, RecordingFailure
from .recording import Recording

log = logging.getLogger("relaycast.record")


@dataclass(frozen=True, slots=True)
class RecordStats:
    """Totals since the process started (Prometheus counters), and what runs now."""

    active: int
    bytes_written: int
    write_errors: int
    dropped_frames: int


class RecordService:
    def __init__(
        self,
        root: Path,
        settings: RecordSettings,
        catalog: RecordingCatalog,
        opener: Opener = open_os_file,
        segmenters: Callable[[str, Stream], Segmenter | None] = lambda stream_id, stream: None,
    ) -> None:
        """``segmenters``: a stream's live HLS segmenter (opened before the recorder
        hears of the session), whose output recordings copy instead of muxing again."""
        self.root = root
        self.segmenters = segmenters
        self.settings = settings
        self.catalog = catalog
        self.opener = opener
        self._recordings: dict[str, Recording] = {}
        self._warnings: dict[str, str] = {}
        # every recording still running (a new session's may already be in
        # ``_recordings`` while the last one hands its files over), and what those that
        # ended had done: the totals never go down
        self._active: set[Recording] = set()
        self._ended = RecordStats(0, 0, 0, 0)
        self._tasks = BackgroundTasks(log, "recording failed")
        self._running: set[asyncio.Task[None]] = set()
        # One writer thread for every recording: they share a disk, and a thread per
        # stream would cost memory (stacks, malloc arenas) for no throughput.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="record")

    def stream_opened(self, grant: StreamGrant, stream: Stream, session_id: str) -> None:
        """``StreamObserver``: start recording the new session if the stream records."""
        self._warnings.pop(grant.stream_id, None)
        if not grant.recording:
            return
        refusal = self._refusal()
        if refusal is not None:
            log.warning(
                "stream %s: %s", grant.stream_id, refusal, extra=media_fields(grant.stream_id)
            )
            self._fail(RecordingFailure(grant.stream_id, session_id, grant.environment_id, refusal))
            return
        recording = Recording(
            stream,
            stream_id=grant.stream_id,
            session_id=session_id,
            environment_id=grant.environment_id,
            started_at=datetime.now(UTC),
            directory=self.root / grant.stream_id / session_id,
            settings=self.settings,
            opener=self.opener,
            executor=self._writer,
            on_failure=lambda text: self._fail(
                RecordingFailure(grant.stream_id, session_id, grant.environment_id, text)
            ),
            segmenter=self._fresh_segmenter(grant.stream_id, stream),
        )
        self._recordings[grant.stream_id] = recording
        self._active.add(recording)
        task = self._tasks.spawn(self._run(recording), name=f"record-{grant.stream_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def _fresh_segmenter(self, stream_id: str, stream: Stream) -> Segmenter | None:
        """The session's segmenter if nothing copies it yet."""
        segmenter = self.segmenters(stream_id, stream)
        return segmenter if segmenter is not None and segmenter.tap is None else None

    def _refusal(self) -> str | None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.root).free
        except OSError as exc:
            return f"recording not started: the recordings directory is unusable ({exc.strerror})"
        if free < self.settings.min_free_bytes:
            return (
                f"recording not started: {free} bytes free, below recording.min_free_bytes "
                f"({self.settings.min_free_bytes})"
            )
        return None

    def _fail(self, failure: RecordingFailure) -> None:
        """The stream's health warning until its next session, and the catalog's event."""
        self._warnings[failure.stream_id] = failure.reason
        self.catalog.recording_failed(failure)

    async def _run(self, recording: Recording) -> None:
        try:
            finished = await recording.run()
        finally:
            if self._recordings.get(recording.stream_id) is recording:
                del self._recordings[recording.stream_id]
            self._active.discard(recording)
            ended = self._ended
            self._ended = RecordStats(
                0,
                ended.bytes_written + recording.bytes_written,
                ended.write_errors + (recording.failure is not None),
                ended.dropped_frames + recording.dropped_frames,
            )
        if finished is not None:
            await self.catalog.recording_finished(finished)

    # ------------------------------------------------------------ queries

    def warnings(self, stream_id: str) -> list[str]:
        """What went wrong with the stream's recording in its current or last session."""
        text = self._warnings.get(stream_id)
        return [text] if text else []

    def recording(self, stream_id: str) -> Recording | None:
        return self._recordings.get(stream_id)

    def stats(self) -> RecordStats:
        """For ``/metrics``: recordings running, and totals of bytes written, recordings
        stopped by a failed write, frames dropped (slow disk: to the next keyframe)."""
        running = list(self._active)
        return RecordStats(
            len(running),
            self._ended.bytes_written + sum(r.bytes_written for r in running),
            self._ended.write_errors + sum(r.failure is not None for r in running),
            self._ended.dropped_frames + sum(r.dropped_frames for r in running),
        )

    # ------------------------------------------------------------ lifecycle

    async def close(self, grace: float = 5.0) -> None:
        """Process stop, after ingest ended the sessions: let recordings hand their
        files over (bounded); what is cut short is found at the next start."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=grace)
        await self._tasks.close()
        self._writer.shutdown(wait=False)
