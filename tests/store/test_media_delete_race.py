"""Deleting a media item while its MP4 remux runs leaves neither a file nor an item,
on SQLite and PostgreSQL. The remux is the real one, held at its start by a gate."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

from control_api.credentials import new_id
from control_api.media_library.files import MediaFiles
from control_api.media_library.processor import Processor
from control_api.media_library.removal import delete_item
from control_api.media_library.remux import remux_to_mp4
from control_api.store import Store
from control_api.store.models import Media
from control_api.store.uploads import media_path
from tests.store.test_recordings_store import fragmented_mp4  # noqa: F401 (a fixture)


class GatedRemux:
    """The real remux, held after it opened the source until the test opens the gate
    (a file deleted meanwhile is still read whole, as by a remux that was under way)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()

    def __call__(self, source: Path, target: Path) -> None:
        fd = os.open(source, os.O_RDONLY)
        try:
            self.started.set()
            assert self.gate.wait(10), "the test never opened the gate"
            remux_to_mp4(Path(f"/proc/self/fd/{fd}"), target)
        finally:
            os.close(fd)


async def _recorded_item(store: Store, files: MediaFiles, fmp4: Path) -> Media:
    """A recording waiting for its probe: recordings are always remuxed."""
    env, _ = await store.environments.ensure("default")
    media_id = new_id("med")
    relative = media_path(env.id, media_id)
    target = files.path(relative)
    target.parent.mkdir(parents=True)
    await asyncio.to_thread(shutil.copyfile, fmp4, target)
    row = Media(
        id=media_id,
        environment_id=env.id,
        name="r",
        status="processing",
        source="recording",
        filename="recording.mp4",
        path=relative,
        created_at=datetime.now(UTC),
        tags=[],
    )
    await store.media.add(row)
    return row


async def test_delete_during_the_remux_leaves_no_file_and_no_item(
    store: Store,
    tmp_path: Path,
    fragmented_mp4: Path,  # noqa: F811
) -> None:
    files = MediaFiles(tmp_path / "data")
    remux = GatedRemux()
    processor = Processor(store, files, 1, remux=remux)
    row = await _recorded_item(store, files, fragmented_mp4)
    probing = asyncio.create_task(processor.process(row.id))
    assert await asyncio.to_thread(remux.started.wait, 10)
    assert await delete_item(store, files, row.environment_id, row.id) is not None
    remux.gate.set()
    assert await probing is None  # nothing to mark ready any more
    assert await store.media.by_id(row.id) is None
    assert list(files.path(row.path).parent.iterdir()) == []


async def test_delete_after_the_item_is_ready_removes_the_remuxed_mp4_too(
    store: Store,
    tmp_path: Path,
    fragmented_mp4: Path,  # noqa: F811
) -> None:
    files = MediaFiles(tmp_path / "data")
    remux = GatedRemux()
    remux.gate.set()
    row = await _recorded_item(store, files, fragmented_mp4)
    assert await Processor(store, files, 1, remux=remux).process(row.id) == "ready"
    ready = await store.media.by_id(row.id)
    assert ready is not None and ready.mp4_path and files.path(ready.mp4_path).exists()
    assert await delete_item(store, files, row.environment_id, row.id) is not None
    assert list(files.path(row.path).parent.iterdir()) == []
