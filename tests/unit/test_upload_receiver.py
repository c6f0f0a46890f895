"""The upload receiver on its own: a body fed by hand, a real file, no sockets.

Every refusal must leave the file exactly as it was before the request; a client that
goes away leaves what arrived (unless a checksum was promised).
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol

from control_api.media_library import tus
from control_api.media_library.receiver import (
    BodyStalled,
    ChecksumMismatch,
    ShortFile,
    TooLarge,
    UploadFile,
    receive,
    recover_file,
)

BEFORE = b"already stored "


def body(*chunks: bytes, end: bool = True) -> StreamReader:
    """A request body as aiohttp's parser would fill it, on a connection that is open."""
    protocol = BaseProtocol(asyncio.get_running_loop())
    protocol.transport = mock.Mock(spec=asyncio.Transport)
    reader = StreamReader(protocol, 2**16)
    for chunk in chunks:
        reader.feed_data(chunk)
    if end:
        reader.feed_eof()
    return reader


def sha1(data: bytes) -> tus.Checksum:
    header = "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()
    parsed = tus.upload_checksum({"Upload-Checksum": header})
    assert parsed is not None
    return parsed


def content(path: Path) -> bytes:
    return path.read_bytes()


def restore(path: Path) -> None:
    path.write_bytes(BEFORE)


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    path = tmp_path / "env" / "med_1"
    path.parent.mkdir()
    path.write_bytes(BEFORE)
    return path


async def run(path: Path, reader: StreamReader, length: int = 1000, **kw: Any) -> int:
    options: dict[str, Any] = {"checksum": None, "idle_timeout": 5.0, "batch_bytes": 8}
    options.update(kw)
    return await receive(
        reader, UploadFile(path, len(BEFORE)), start=len(BEFORE), length=length, **options
    )


async def test_a_complete_body_is_appended_in_batches(stored: Path) -> None:
    chunks = [b"abc", b"defghij", b"k" * 20]
    data = b"".join(chunks)
    assert await run(stored, body(*chunks), checksum=sha1(data)) == len(BEFORE) + len(data)
    assert content(stored) == BEFORE + data


async def test_a_checksum_mismatch_leaves_the_file_as_it_was(stored: Path) -> None:
    with pytest.raises(ChecksumMismatch):
        await run(stored, body(b"x" * 50), checksum=sha1(b"y" * 50))
    assert content(stored) == BEFORE


async def test_going_past_the_length_leaves_the_file_as_it_was(stored: Path) -> None:
    with pytest.raises(TooLarge):
        await run(stored, body(b"x" * 40, b"y" * 40), length=len(BEFORE) + 60)
    assert content(stored) == BEFORE


async def leaves(path: Path, **kw: Any) -> int:
    """The client sends "partial", then its connection drops."""
    reader = body(b"partial", end=False)
    task = asyncio.create_task(run(path, reader, **kw))
    for _ in range(10):
        await asyncio.sleep(0)  # the receiver takes the buffered bytes and waits for more
    reader.set_exception(ConnectionResetError("Connection lost"))
    return await task


async def test_a_client_that_leaves_keeps_what_arrived(stored: Path) -> None:
    assert await leaves(stored) == len(BEFORE) + 7
    assert content(stored) == BEFORE + b"partial"


async def test_with_a_checksum_a_partial_body_is_dropped(stored: Path) -> None:
    offset = await leaves(stored, checksum=sha1(b"partial body"))
    assert offset == len(BEFORE) and content(stored) == BEFORE


async def test_a_stalled_body_is_kept_and_reported(stored: Path) -> None:
    with pytest.raises(BodyStalled) as stall:
        await run(stored, body(b"slow", end=False), idle_timeout=0.05)
    assert stall.value.offset == len(BEFORE) + 4 and content(stored) == BEFORE + b"slow"


async def test_a_disk_error_rolls_back(stored: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    with mock.patch.object(UploadFile, "sync", side_effect=full), pytest.raises(OSError):
        await run(stored, body(b"x" * 30))
    assert content(stored) == BEFORE


def test_opening_cuts_off_bytes_past_the_recorded_offset(stored: Path) -> None:
    stored.write_bytes(BEFORE + b"unrecorded residue of a crash")
    UploadFile(stored, len(BEFORE)).close()
    assert content(stored) == BEFORE
    with pytest.raises(ShortFile) as short:
        UploadFile(stored, len(BEFORE) + 1)
    assert short.value.size == len(BEFORE)


def test_after_a_crash_unrecorded_bytes_are_kept_unless_a_checksum_was_promised(
    stored: Path,
) -> None:
    residue = b"body bytes a killed PATCH wrote"
    stored.write_bytes(BEFORE + residue)
    assert recover_file(stored, len(BEFORE), 1000, checksummed=True) is None
    assert content(stored) == BEFORE
    stored.write_bytes(BEFORE + residue)
    assert recover_file(stored, len(BEFORE), 1000, checksummed=False) == len(BEFORE + residue)
    assert content(stored) == BEFORE + residue
    assert recover_file(stored, len(BEFORE), len(BEFORE) + 4, checksummed=False) == len(BEFORE) + 4
    assert content(stored) == BEFORE + residue[:4]  # never past the upload's length
    assert recover_file(stored, len(BEFORE) + 4, 1000, checksummed=False) is None
    assert recover_file(stored.with_name("gone"), 0, 1000, checksummed=False) is None


async def test_a_shutdown_mid_body_leaves_what_was_written_unless_checksummed(
    stored: Path,
) -> None:
    for checksum, left in ((None, BEFORE + b"x" * 16), (sha1(b"x" * 64), BEFORE)):
        restore(stored)
        reader = body(b"x" * 16, end=False)
        task = asyncio.ensure_future(run(stored, reader, checksum=checksum))
        await asyncio.sleep(0.05)  # both 8-byte batches written, then waiting for more
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert content(stored) == left
