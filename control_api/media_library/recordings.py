"""The control plane's side of recording: finished files become media items.

The media plane writes each recorded session to ``<data_dir>/recordings/<stream>/
<session>`` and hands the directory over here when the session ends; at start-up the
directories a crash left behind are handed over the same way. Each part (a codec or
resolution change starts a new one) is cut back to its last whole fragment, moved
into the library and probed like an upload; the processor remuxes it once to a
seekable MP4 and sends ``recording.ready``. The directory goes last, so a crash in
between leaves it to be found again. A recording that stopped on a disk failure (or was
refused for lack of space) is announced as ``recording.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from control_api.credentials import new_id
from control_api.jobs import Jobs
from control_api.media_library.files import MediaFiles
from control_api.settings import RecordingSettings
from control_api.store import Store
from control_api.store.models import Media
from control_api.store.uploads import media_path
from server.record.manifest import left_behind
from server.record.ports import FinishedRecording, RecordingFailure
from server.record.trim import trim_to_whole

log = logging.getLogger("relaycast.record")
NAME_LIMIT = 200
RECORDINGS_JOB = "recordings:"
"""The job of a named node's recordings folder, held by the node while it lives."""
TAKE_POLL = 0.5


def recording_name(stream_name: str, started_at: datetime, part: int) -> str:
    """ "<stream name> <start, UTC>" (and the part when a change split the session)."""
    when = started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    tail = f" {when}" + (f" (part {part + 1})" if part else "")
    return stream_name[: NAME_LIMIT - len(tail)] + tail


def _finish_part(source: Path, target: Path) -> int:
    """Trim ``source`` to whole fragments and move it to ``target``; its size (0: no
    media in it, nothing moved)."""
    if not source.is_file():
        return 0
    trim_to_whole(source)
    size = source.stat().st_size
    if size == 0:
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    return size


def _remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    with contextlib.suppress(OSError):  # the stream's directory, once its last session is gone
        directory.parent.rmdir()


class LibraryRecordings:
    """``server.record.ports.RecordingCatalog`` on the store and the library's files."""

    def __init__(
        self,
        store: Store,
        files: MediaFiles,
        settings: RecordingSettings,
    ) -> None:
        self._store = store
        self._files = files
        self._settings = settings
        self.submit: Callable[[str], None] | None = None
        """The processor's queue, once it runs; before, new items wait in ``processing``
        and the processor's start picks them up."""

    async def recording_finished(self, recording: FinishedRecording) -> None:
        try:
            await self._catalog(recording)
        except Exception:  # the directory stays: the next start tries again
            log.exception("stream %s: finishing the recording failed", recording.stream_id)

    def recording_failed(self, failure: RecordingFailure) -> None:
        """``recording.failed`` to webhooks: the ids and the reason the health shows."""
        data = {
            "streamId": failure.stream_id,
            "sessionId": failure.session_id,
            "reason": failure.reason,
        }
        self._store.events.emit("recording.failed", failure.environment_id, data)

    async def recover(self, root: Path) -> int:
        """Finish the recordings a previous process left on disk; return how many."""
        found = await asyncio.to_thread(left_behind, root)
        for recording in found:
            await self.recording_finished(recording)
        return len(found)

    async def recover_own(self, jobs: Jobs, root: Path, node: str) -> int:
        """At start-up: this node's left-behind recordings, under the job
        ``recordings:<node>`` held for the node's life, so no other node touches the
        recordings it writes; if another node is finishing them (this node was dead),
        wait for it, up to a lease."""
        job = RECORDINGS_JOB + node
        deadline = asyncio.get_running_loop().time() + jobs.lease
        while not await jobs.take(job):
            if asyncio.get_running_loop().time() > deadline:
                log.error("node %s: its recordings are held by another process", node)
                return 0
            await asyncio.sleep(TAKE_POLL)
        return await self.recover(root)

    async def take_over(self, jobs: Jobs, base: Path) -> int:
        """Finish the recordings of nodes that died (their job lapsed): each node's
        folder under ``base``, by one node."""
        finished = 0
        for job in await jobs.lapsed(RECORDINGS_JOB):
            node = job.removeprefix(RECORDINGS_JOB)
            if not await jobs.take(job):
                continue
            try:
                finished += await self.recover(base / node)
            finally:
                await jobs.release(job)
            log.warning("finished the recordings of dead node %s", node)
        return finished

    async def _catalog(self, recording: FinishedRecording) -> None:
        env = recording.environment_id
        stream = await self._store.live_streams.get(env, recording.stream_id)
        name = stream.name if stream is not None else recording.stream_id
        policy = stream.playback_policy if stream is not None else "private"
        folder = await self._store.folders.ensure_root(env, self._settings.folder)
        for index, part in enumerate(recording.parts):
            media_id = new_id("med")
            relative = media_path(env, media_id)
            size = await asyncio.to_thread(_finish_part, part, self._files.path(relative))
            if not size:
                continue
            await self._store.media.add(
                Media(
                    id=media_id,
                    environment_id=env,
                    folder_id=folder,
                    name=recording_name(name, recording.started_at, index),
                    status="processing",
                    source="recording",
                    filename="recording.mp4",
                    path=relative,
                    size_bytes=size,
                    playback_policy=policy,
                    stream_id=recording.stream_id,
                    session_id=recording.session_id,
                    created_at=datetime.now(UTC),
                    tags=[],
                )
            )
            await self._store.stream_sessions.set_recording(recording.session_id, media_id)
            log.info("stream %s: recording %s is media %s", recording.stream_id, part, media_id)
            if self.submit is not None:
                self.submit(media_id)
        await asyncio.to_thread(_remove, recording.directory)
