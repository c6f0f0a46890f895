"""Recordings on SQLite and PostgreSQL: the catalog that turns a session's files into
media items, the folder it creates, the session link, and deleting old recordings."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_api.media_library.files import MediaFiles
from control_api.media_library.janitor import sweep_old_recordings
from control_api.media_library.recordings import LibraryRecordings, recording_name
from control_api.settings import RecordingSettings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from server.bus.items import BusItem, ConfigChange, EndOfStream
from server.record.manifest import MANIFEST, manifest_bytes, part_name
from server.record.muxer import NewFile, RecordMuxer
from server.record.ports import RecordingFailure
from tests.store.test_store import FIELDS
from tests.unit.media.avsource import media


@pytest.fixture
def fragmented_mp4(tmp_path: Path) -> Path:
    """Two seconds of H.264/AAC as the recorder writes it."""
    source = media(seconds=2)
    muxer = RecordMuxer(90_000, 0)
    items: list[BusItem] = [*(ConfigChange(c) for c in source.configs), *source.frames]
    items.append(EndOfStream())
    out = [o for item in items for o in muxer.feed(item)]
    path = tmp_path / "recorded.mp4"
    path.write_bytes(b"".join(o.init if isinstance(o, NewFile) else b"".join(o) for o in out))
    return path


def _size(path: Path) -> int:
    return path.stat().st_size


async def _stream(store: Store) -> tuple[str, str]:
    env, _ = await store.environments.ensure("default")
    row, _key = await store.live_streams.create(
        env.id, {**FIELDS, "name": "Morning show", "recording": True}
    )
    return env.id, row.id


def _recording(root: Path, env: str, stream_id: str, session_id: str, fmp4: Path) -> Path:
    directory = root / stream_id / session_id
    directory.mkdir(parents=True)
    started = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    (directory / MANIFEST).write_bytes(manifest_bytes(stream_id, session_id, env, started))
    shutil.copy(fmp4, directory / part_name(0))
    with (directory / part_name(0)).open("ab") as f:
        f.write(b"\x00\x00\x10\x00moof")  # a fragment the crash cut short
    return directory


async def test_a_left_behind_recording_becomes_a_media_item(
    store: Store, tmp_path: Path, fragmented_mp4: Path
) -> None:
    env, stream_id = await _stream(store)
    directory = StoreDirectory(store.sessions)
    session_id = await directory.session_opened(stream_id, "rtmp", "1.2.3.4", datetime.now(UTC))
    files = MediaFiles(tmp_path / "data")
    catalog = LibraryRecordings(store, files, RecordingSettings(folder="Shows"))
    root = tmp_path / "recordings"
    left = _recording(root, env, stream_id, session_id, fragmented_mp4)
    submitted: list[str] = []
    catalog.submit = submitted.append

    assert await catalog.recover(root) == 1

    assert not left.exists() and not (root / stream_id).exists()
    [media_id] = submitted
    item = await store.media.get(env, media_id)
    assert item is not None and item.source == "recording" and item.status == "processing"
    assert (item.stream_id, item.session_id) == (stream_id, session_id)
    assert item.playback_policy == "public"
    assert item.name == "Morning show 2026-12-07 05:00:00 UTC"
    assert _size(files.path(item.path)) == _size(fragmented_mp4)  # trimmed
    assert item.size_bytes == _size(fragmented_mp4)
    folder = await store.folders.get(env, item.folder_id or "")
    assert folder is not None and folder.row.name == "Shows"
    session = await store.stream_sessions.get(env, session_id)
    assert session is not None and session.recording_media_id == media_id
    assert await store.folders.ensure_root(env, "Shows") == item.folder_id  # found, not made

    await directory.session_closed(stream_id, session_id, datetime.now(UTC), 0, None)
    session = await store.stream_sessions.get(env, session_id)
    assert session is not None and session.recording_media_id == media_id  # kept on close


async def test_old_recordings_are_deleted_after_the_configured_days(
    store: Store, tmp_path: Path, fragmented_mp4: Path
) -> None:
    env, stream_id = await _stream(store)
    directory = StoreDirectory(store.sessions)
    session_id = await directory.session_opened(stream_id, "srt", "1.2.3.4", datetime.now(UTC))
    files = MediaFiles(tmp_path / "data")
    catalog = LibraryRecordings(store, files, RecordingSettings())
    root = tmp_path / "recordings"
    _recording(root, env, stream_id, session_id, fragmented_mp4)
    await catalog.recover(root)
    [item] = await store.media.with_status("processing")
    soon = datetime.now(UTC) + timedelta(days=2)
    assert await sweep_old_recordings(store, files, 0, soon + timedelta(days=999)) == 0  # keep
    assert await sweep_old_recordings(store, files, 3, soon) == 0  # not old enough
    assert await sweep_old_recordings(store, files, 1, soon) == 1
    assert await store.media.get(env, item.id) is None
    assert not files.path(item.path).exists()


def test_names_fit_the_limit() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert recording_name("x" * 300, when, 1).endswith(" 2026-01-02 03:04:05 UTC (part 2)")
    assert len(recording_name("x" * 300, when, 1)) == 200


async def test_a_failed_recording_is_announced_as_recording_failed(
    store: Store, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, object]] = []

    class Listener:
        def event(self, type_: str, environment_id: str, resource: object) -> None:
            seen.append((type_, environment_id, resource))

    store.events.listeners.append(Listener())  # type: ignore[arg-type]
    catalog = LibraryRecordings(store, MediaFiles(tmp_path), RecordingSettings())
    reason = "recording stopped: writing to disk failed (No space left on device)"
    catalog.recording_failed(RecordingFailure("ls_1", "ses_1", "env_1", reason))
    data = {"streamId": "ls_1", "sessionId": "ses_1", "reason": reason}
    assert seen == [("recording.failed", "env_1", data)]
