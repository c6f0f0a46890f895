"""Uploads against the real ``relaycast serve`` process: restarts and memory at 1 GiB.

The memory bound: while receiving a 1 GiB upload in 8 MiB PATCHes, the server's peak
resident set (VmHWM, which the kernel tracks, so no sample can miss a spike) grows by
less than 64 MiB over its resident set before the upload. Received bytes are streamed
to disk; a 1 GiB file could not pass through that budget.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api.tus_helpers import clip
from tests.serverproc import ServerProcess, start_server

# disk- or CPU-heavy: after the parallel phase, two at a time (scripts/test.sh)
pytestmark = pytest.mark.serial

__all__ = ["clip"]
MIB = 1024 * 1024
GROWTH_BOUND = 64 * MIB
ARGS = ("--rtmp-port", "0")
ENV = {"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"}


class Client:
    """Blocking tus calls with http.client: exact control over what is sent, and when."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        parts = urlsplit(server.base)
        self.host, self.port, self.key = parts.hostname or "", parts.port or 80, key

    def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        hdrs = {"Authorization": f"Bearer {self.key}", "Tus-Resumable": "1.0.0", **headers}
        conn.request(method, path, body=body, headers=hdrs)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    def create(self, length: int, filename: str) -> tuple[str, str]:
        meta = "filename " + base64.b64encode(filename.encode()).decode()
        reply = self.request(
            "POST", "/v1/uploads", {"Upload-Length": str(length), "Upload-Metadata": meta}
        )
        assert reply.status == 201, reply.status
        return reply.headers["Location"], reply.headers["Relaycast-Media-Id"]

    def patch(self, path: str, offset: int, data: bytes) -> int:
        reply = self.request(
            "PATCH",
            path,
            {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
            data,
        )
        assert reply.status == 204, reply.status
        return int(reply.headers["Upload-Offset"])

    def offset(self, path: str) -> int:
        reply = self.request("HEAD", path, {})
        assert reply.status == 200, reply.status
        return int(reply.headers["Upload-Offset"])

    def media(self, media_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request(
                "GET", f"/v1/media/{media_id}", headers={"Authorization": f"Bearer {self.key}"}
            )
            item: dict[str, Any] = json.loads(conn.getresponse().read())
            conn.close()
            if item.get("status") not in ("uploading", "processing"):
                return item
            assert time.monotonic() < deadline, item
            time.sleep(0.1)


def _start(data_dir: Path) -> ServerProcess:
    return start_server(data_dir, *ARGS, env=ENV)


def test_upload_resumes_across_restarts_and_a_crash_mid_patch(tmp_path: Path, clip: bytes) -> None:
    first = _start(tmp_path)
    key = first.bootstrap_key
    assert key
    try:
        client = Client(first, key)
        path, media_id = client.create(len(clip), "clip.mp4")
        assert client.patch(path, 0, clip[:100_000]) == 100_000
    finally:
        first.stop(signal.SIGTERM)

    second = _start(tmp_path)
    try:
        client = Client(second, key)
        assert client.offset(path) == 100_000
        assert client.patch(path, 100_000, clip[100_000:150_000]) == 150_000
        # a PATCH is half sent when the server dies without any chance to clean up
        raw = socket.create_connection((client.host, client.port))
        raw.sendall(
            (
                f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Upload-Offset: 150000\r\nContent-Length: {len(clip) - 150_000}\r\n\r\n"
            ).encode()
            + clip[150_000:200_000]
        )
        time.sleep(0.3)
        second.stop(signal.SIGKILL)
        raw.close()
    finally:
        second.stop()

    third = _start(tmp_path)
    try:
        client = Client(third, key)
        offset = client.offset(path)
        assert 150_000 <= offset <= 200_000  # only what was fsynced and recorded counts
        assert client.patch(path, offset, clip[offset:]) == len(clip)
        item = client.media(media_id)
        assert item["status"] == "ready" and item["sizeBytes"] == len(clip)
    finally:
        third.stop()
    env_dirs = list((tmp_path / "media").iterdir())
    assert (env_dirs[0] / media_id).read_bytes() == clip
    assert "Traceback" not in first.log() + second.log() + third.log(), third.log()[-3000:]


def _chunks(total: int, size: int) -> Iterator[bytes]:
    """``total`` bytes made on the fly: one random 1 MiB block, stamped per chunk."""
    block = os.urandom(MIB)
    for index in range(total // size):
        stamp = hashlib.sha256(index.to_bytes(8, "big")).digest()
        yield stamp + (block * (size // MIB))[len(stamp) :]


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_one_gib_upload_keeps_server_memory_flat(tmp_path: Path) -> None:
    total, chunk = 1024 * MIB, 8 * MIB
    server = _start(tmp_path)
    try:
        key = server.bootstrap_key
        assert key
        client = Client(server, key)
        pid = server.proc.pid
        path, media_id = client.create(total, "big.bin")
        client.patch(path, 0, b"\0" * MIB)  # warm the code path before the baseline
        client.request("DELETE", path, {})
        path, media_id = client.create(total, "big.bin")
        before = _status_kib(pid, "VmRSS") * 1024
        offset = 0
        for data in _chunks(total, chunk):
            offset = client.patch(path, offset, data)
        peak = _status_kib(pid, "VmHWM") * 1024
        assert offset == total
        growth = peak - before
        print(f"server RSS before {before / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB")
        assert growth < GROWTH_BOUND, f"server grew by {growth / MIB:.1f} MiB during 1 GiB"
        item = client.media(media_id)
        assert item["sizeBytes"] == total and item["status"] in ("ready", "error")
        assert client.request("DELETE", f"/v1/media/{media_id}", {}).status == 204
    finally:
        server.stop()


def _media_file(data_dir: Path) -> Path:
    files = [f for env in (data_dir / "media").iterdir() for f in env.iterdir()]
    uploads = [f for f in files if "." not in f.name]  # not a marker file
    assert len(uploads) == 1, files
    return uploads[0]


def _kill_mid_patch(
    server: ServerProcess, data_dir: Path, key: str, path: str, body: bytes, extra: str = ""
) -> int:
    """Send a PATCH announcing all of ``body`` but only two thirds of it, wait until
    most of that is on disk, SIGKILL the server; return the file's size afterwards."""
    sent = len(body) * 2 // 3
    parts = urlsplit(server.base)
    raw = socket.create_connection((parts.hostname or "", parts.port or 80))
    raw.sendall(
        (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: 0\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        ).encode()
        + body[:sent]
    )
    deadline = time.monotonic() + 10
    while _media_file(data_dir).stat().st_size < sent // 2:
        assert time.monotonic() < deadline, _media_file(data_dir).stat().st_size
        time.sleep(0.02)
    server.stop(signal.SIGKILL)
    raw.close()
    return _media_file(data_dir).stat().st_size


SMALL_BATCHES = {**ENV, "RELAYCAST_MEDIA__WRITE_BUFFER_BYTES": "4096"}


def test_a_kill_mid_patch_keeps_the_bytes_on_disk_as_the_offset(
    tmp_path: Path, clip: bytes
) -> None:
    first = start_server(tmp_path, *ARGS, env=SMALL_BATCHES)
    key = first.bootstrap_key
    assert key
    try:
        path, media_id = Client(first, key).create(len(clip), "clip.mp4")
        on_disk = _kill_mid_patch(first, tmp_path, key, path, clip)
    finally:
        first.stop()
    assert on_disk > 0

    second = start_server(tmp_path, *ARGS, env=SMALL_BATCHES)
    try:
        client = Client(second, key)
        assert client.offset(path) == on_disk
        assert client.patch(path, on_disk, clip[on_disk:]) == len(clip)
        item = client.media(media_id)
        assert item["status"] == "ready" and item["sizeBytes"] == len(clip), item
    finally:
        second.stop()
    assert _media_file(tmp_path).read_bytes() == clip
    assert "recovered" in second.log(), second.log()[-2000:]


def test_a_kill_mid_checksummed_patch_discards_the_unverifiable_bytes(
    tmp_path: Path, clip: bytes
) -> None:
    first = start_server(tmp_path, *ARGS, env=SMALL_BATCHES)
    key = first.bootstrap_key
    assert key
    try:
        path, media_id = Client(first, key).create(len(clip), "clip.mp4")
        digest = base64.b64encode(hashlib.sha1(clip).digest()).decode()
        checksum = f"Upload-Checksum: sha1 {digest}\r\n"
        on_disk = _kill_mid_patch(first, tmp_path, key, path, clip, checksum)
    finally:
        first.stop()
    assert on_disk > 0

    second = start_server(tmp_path, *ARGS, env=SMALL_BATCHES)
    try:
        client = Client(second, key)
        assert client.offset(path) == 0
        assert _media_file(tmp_path).stat().st_size == 0
        assert client.patch(path, 0, clip) == len(clip)
        assert client.media(media_id)["status"] == "ready"
    finally:
        second.stop()
    assert _media_file(tmp_path).read_bytes() == clip
