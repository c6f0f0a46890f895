"""Cached VOD segments leave by sendfile from memory, whole and in order, over real sockets.

The segments are large (a 720p file at a high bitrate, about 1 MB each) so a viewer with
a small receive buffer makes the server wait for the socket, and one that stops reading
makes it give up after ``vod.send_stall_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.vod import upload
from server.vod.http import VOD_SERVICE
from tests.api.conftest import Api, ApiFactory
from tests.api.vod_helpers import H264, ffmpeg, get, ready_item
from tests.serverproc import start_server

pytestmark = pytest.mark.serial

BIG = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", *H264, "-crf", "8"]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ffmpeg(tmp_path_factory.mktemp("vodsf") / "big.mp4", *BIG, seconds=4)


async def _segment_url(api: Api, path: Path) -> str:
    item = await ready_item(api, path)
    await get(api, item["playback"]["hlsUrl"])
    return str(item["playback"]["hlsUrl"]).replace("master.m3u8", "seg1.m4s")


def _raw_get(url: str, rcvbuf: int = 0) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    return sock


def _read_response(sock: socket.socket, pause: float = 0.0) -> bytes:
    """One response's body, read in 16 KiB steps with ``pause`` seconds between them."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(16384)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        if pause:
            time.sleep(pause)
        chunk = sock.recv(min(16384, length - len(body)))
        assert chunk, "connection closed mid-body"
        body += chunk
    return body


async def test_cached_segments_go_out_by_sendfile_whole_and_in_order(
    api: Api, big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real = os.sendfile

    def counting(out: int, in_fd: int, offset: int | None, count: int) -> int:
        done = real(out, in_fd, offset, count)
        sent.append(done)
        return done

    monkeypatch.setattr(os, "sendfile", counting)
    url = await _segment_url(api, big_file)
    status, _, expected = await get(api, url)
    assert status == 200 and len(expected) > 500_000
    sock = await asyncio.to_thread(_raw_get, url)
    try:  # two responses on one keep-alive connection, each whole and in order
        assert await asyncio.to_thread(_read_response, sock) == expected
        sock.sendall(f"GET {urlsplit(url).path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert await asyncio.to_thread(_read_response, sock) == expected
    finally:
        sock.close()
    assert sum(sent) == 3 * len(expected)


async def test_a_slow_viewer_gets_every_byte(api: Api, big_file: Path) -> None:
    url = await _segment_url(api, big_file)
    expected = (await get(api, url))[2]
    sock = await asyncio.to_thread(_raw_get, url, 4096)
    try:
        assert await asyncio.to_thread(_read_response, sock, 0.001) == expected
    finally:
        sock.close()


async def test_a_viewer_who_stops_reading_is_cut_after_the_stall_timeout(
    make_api: ApiFactory, big_file: Path
) -> None:
    api = await make_api(vod={"send_stall_timeout": 0.5})
    url = await _segment_url(api, big_file)
    expected = len((await get(api, url))[2])
    sock = await asyncio.to_thread(_raw_get, url, 4096)
    try:
        await asyncio.sleep(2.0)  # the server gives up on this reader after 0.5 s

        def drain() -> int:
            got = 0
            try:
                while chunk := sock.recv(65536):
                    got += len(chunk)
            except ConnectionResetError:
                pass
            return got

        assert await asyncio.to_thread(drain) < expected
    finally:
        sock.close()
    assert (await get(api, url))[0] == 200


async def test_a_viewer_hanging_up_mid_segment_is_no_error(
    api: Api, big_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = await _segment_url(api, big_file)
    expected = (await get(api, url))[2]
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        sock = await asyncio.to_thread(_raw_get, url, 4096)
        await asyncio.to_thread(sock.recv, 1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST with most of the segment unsent
    await asyncio.sleep(0.2)
    assert (await get(api, url))[2] == expected
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_segment_cache_keeps_at_most_segment_cache_files(
    make_api: ApiFactory, big_file: Path
) -> None:
    api = await make_api(vod={"segment_cache_files": 1})
    service = api.http_app[VOD_SERVICE]
    first = await _segment_url(api, big_file)
    second = first.replace("seg1.m4s", "seg0.m4s")
    before = service.reads
    for url in (first, second, first):  # the second evicts the first: one file at most
        assert (await get(api, url))[0] == 200
    assert service.reads == before + 3


def _ready_public(base: str, key: str, path: Path) -> str:
    """Upload ``path`` to a server process, wait until ready, make it public: its id."""
    media_id = upload(base, key, path)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for _ in range(300):
        with urllib.request.urlopen(
            urllib.request.Request(f"{base}/v1/media/{media_id}", headers=auth), timeout=10
        ) as resp:
            if json.load(resp)["status"] == "ready":
                break
        time.sleep(0.1)
    patch = urllib.request.Request(
        f"{base}/v1/media/{media_id}",
        data=b'{"playbackPolicy": "public"}',
        method="PATCH",
        headers=auth,
    )
    urllib.request.urlopen(patch, timeout=10).close()
    return media_id


def test_under_uvloop_slow_viewers_get_every_byte_and_stalled_ones_are_cut(
    tmp_path: Path, big_file: Path
) -> None:
    """``relaycast serve`` runs uvloop, whose transports refuse ``add_writer`` on their
    own descriptor: the sendfile path waits on a duplicate, checked here for real."""
    server = start_server(tmp_path / "data", env={"RELAYCAST_VOD__SEND_STALL_TIMEOUT": "1"})
    try:
        assert server.bootstrap_key
        media_id = _ready_public(server.base, server.bootstrap_key, big_file)
        url = f"{server.base}/vod/{media_id}/seg1.m4s"
        with urllib.request.urlopen(url, timeout=30) as resp:
            expected = resp.read()
        slow = _raw_get(url, 4096)
        try:
            assert _read_response(slow, 0.001) == expected
        finally:
            slow.close()
        stalled = _raw_get(url, 4096)
        try:
            time.sleep(3)  # the server gives up on this reader after 1 s
            got = 0
            with contextlib.suppress(ConnectionResetError):
                while chunk := stalled.recv(65536):
                    got += len(chunk)
            assert got < len(expected)
        finally:
            stalled.close()
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.read() == expected
        assert "Traceback" not in "".join(server.stderr)
    finally:
        server.stop()
