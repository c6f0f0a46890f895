"""The RTMP(S) publisher client against real servers on 127.0.0.1.

* ``ffmpeg -listen 1`` (an independent RTMP server) records what we publish with
  ``send_config``/``send_frame``, and what the benchmark's pre-chunked loop sends; the
  recordings must decode.
* ``relaycast serve`` refuses a wrong key and a wrong app with the server's status code,
  accepts the right key, and over RTMPS the certificate is verified by default.
* A server that stops reading makes ``drain()`` wait instead of growing our buffer.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.media import (
    PrechunkedLoop,
    Sample,
    SampleSpec,
    Tag,
    make_sample,
    read_flv,
    sample_frames,
)
from server.media.flv import build_on_metadata
from server.protocols import rtmp
from server.protocols.rtmp.chunk import encode_message
from server.push import PublishRefused, RtmpClientError, RtmpPublisher
from tests.conftest import require_program
from tests.serverproc import ServerProcess, start_server
from tests.tls import self_signed

pytestmark = pytest.mark.interop

SPEC = SampleSpec(seconds=3, width=320, height=180, video_bps=300_000, audio_bps=64_000, noise=4)
API_ENV = {"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"}


@pytest.fixture(scope="module")
def sample_tags(tmp_path_factory: pytest.TempPathFactory) -> list[Tag]:
    """~3 s of H.264/AAC 320x180 encoded with PyAV (libx264 + aac), as FLV tags."""
    return read_flv(make_sample(tmp_path_factory.mktemp("sample") / "sample.flv", SPEC))


@pytest.fixture(scope="module")
def sample(sample_tags: list[Tag]) -> Sample:
    return sample_frames(sample_tags)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def publish_sample(pub: RtmpPublisher, sample: Sample) -> None:
    pub.send_metadata(build_on_metadata(sample.video, sample.audio))
    pub.send_config(sample.video)
    pub.send_config(sample.audio)
    for frame in sample.frames:
        pub.send_frame(frame)
        await pub.drain()


async def connect_when_listening(url: str, within: float = 10.0) -> RtmpPublisher:
    """``ffmpeg -listen 1`` takes one connection, so no probing: retry only while the
    port refuses connections."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await RtmpPublisher.connect(url, timeout=5.0)
        except RtmpClientError as exc:
            if not isinstance(exc.__cause__, ConnectionRefusedError):
                raise
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


def ffmpeg_listener(port: int, out: Path) -> subprocess.Popen[str]:
    ffmpeg = require_program("ffmpeg")
    url = f"rtmp://127.0.0.1:{port}/live/KEY"
    cmd = [ffmpeg, "-hide_banner", "-v", "error", "-y", "-listen", "1", "-i", url]
    return subprocess.Popen(
        [*cmd, "-c", "copy", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def finish(proc: subprocess.Popen[str], within: float = 20.0) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"ffmpeg did not finish after we unpublished: {err}")
    return proc.returncode, err


def probe(path: Path) -> list[dict[str, Any]]:
    ffprobe = require_program("ffprobe")
    entries = [
        "-show_entries",
        "stream=codec_name,width,height",
        "-show_entries",
        "format=duration",
    ]
    done = subprocess.run(
        [ffprobe, "-v", "error", *entries, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    info = json.loads(done.stdout)
    streams: list[dict[str, Any]] = info["streams"]
    streams.append({"duration": float(info["format"]["duration"])})
    return streams


def assert_decodes(path: Path) -> None:
    ffmpeg = require_program("ffmpeg")
    done = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# --------------------------------------------------------------------------- ffmpeg


async def test_frames_published_to_ffmpeg_decode(tmp_path: Path, sample: Sample) -> None:
    port, out = free_port(), tmp_path / "out.flv"
    listener = ffmpeg_listener(port, out)
    try:
        pub = await connect_when_listening(f"rtmp://127.0.0.1:{port}/live/KEY")
        async with pub:
            assert pub.stream_id >= 1
            await publish_sample(pub, sample)
        rc, err = await asyncio.to_thread(finish, listener)
    finally:
        listener.kill()
    assert rc == 0, err
    video, audio, fmt = probe(out)
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    assert audio["codec_name"] == "aac"
    assert 2.5 <= fmt["duration"] <= 3.5
    assert_decodes(out)


async def test_prechunked_passes_keep_timestamps_increasing(
    tmp_path: Path, sample_tags: list[Tag]
) -> None:
    """The load generator's bytes (fmt-1 deltas, the same pass written twice) are valid
    RTMP to an independent server: 2 passes = 6 s of media, timestamps increasing."""
    port, out = free_port(), tmp_path / "loop.flv"
    listener = ffmpeg_listener(port, out)
    try:
        pub = await connect_when_listening(f"rtmp://127.0.0.1:{port}/live/KEY")
        async with pub:
            media = PrechunkedLoop(sample_tags, pub.stream_id, pub.chunk_size)
            pub.send_prechunked(media.head)
            for group in [*media.first, *media.steady]:
                pub.send_prechunked(group.wire)
                await pub.drain()
        rc, err = await asyncio.to_thread(finish, listener)
    finally:
        listener.kill()
    assert rc == 0, err
    *_, fmt = probe(out)
    assert 5.5 <= fmt["duration"] <= 6.5
    last: dict[int, int] = {}
    for tag in read_flv(out):
        assert tag.timestamp >= last.get(tag.type_id, 0), tag
        last[tag.type_id] = tag.timestamp
    assert_decodes(out)


# --------------------------------------------------------------------------- relaycast


def create_stream(server: ServerProcess, name: str) -> str:
    request = urllib.request.Request(
        server.base + "/v1/live-streams",
        data=json.dumps({"name": name}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {server.bootstrap_key}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        key: str = json.loads(response.read())["ingest"]["streamKey"]
    return key


async def test_relaycast_refuses_wrong_key_and_app(tmp_path: Path, sample: Sample) -> None:
    port = free_port()
    server = start_server(tmp_path, "--rtmp-port", str(port), env=API_ENV)
    try:
        key = await asyncio.to_thread(create_stream, server, "client-test")
        base = f"rtmp://127.0.0.1:{port}"
        with pytest.raises(PublishRefused) as refused:
            await RtmpPublisher.connect(f"{base}/live/not-{key}")
        assert refused.value.code == "NetStream.Publish.BadName"
        with pytest.raises(PublishRefused) as refused:
            await RtmpPublisher.connect(f"{base}/elsewhere/{key}")
        assert refused.value.code == "NetConnection.Connect.Rejected"
        async with RtmpPublisher.connect(f"{base}/live/{key}") as pub:
            await publish_sample(pub, sample)
            assert not pub.closed
        assert pub.closed and pub.bytes_sent > 100_000
        for _ in range(100):  # the server saw a clean unpublish, not a dropped connection
            if "encoder unpublished" in "".join(server.stderr):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("no 'encoder unpublished' in the server log:\n" + "".join(server.stderr))
    finally:
        server.stop()


async def test_rtmps_verifies_the_certificate(tmp_path: Path, sample: Sample) -> None:
    cert, key_file = self_signed(tmp_path)
    port = free_port()
    env = {
        **API_ENV,
        "RELAYCAST_RTMPS__CERT": str(cert),
        "RELAYCAST_RTMPS__KEY": str(key_file),
        "RELAYCAST_RTMPS__PORT": str(port),
    }
    server = start_server(tmp_path / "data", "--rtmp-port", "0", env=env)
    try:
        key = await asyncio.to_thread(create_stream, server, "tls-client-test")
        url = f"rtmps://127.0.0.1:{port}/live/{key}"
        with pytest.raises(RtmpClientError, match="certificate verify failed"):
            await RtmpPublisher.connect(url)  # self-signed: refused by default
        trusting = ssl.create_default_context(cafile=str(cert))
        async with RtmpPublisher.connect(url, ssl_context=trusting) as pub:
            await publish_sample(pub, sample)
        with pytest.raises(ValueError, match="rtmps://"):
            await RtmpPublisher.connect(f"rtmp://127.0.0.1:{port}/live/x", ssl_context=trusting)
    finally:
        server.stop()


# --------------------------------------------------------------------------- flow control


class StallingServer(asyncio.Protocol):
    """Accepts connect and publish, then never reads again (a stuck ingest)."""

    def __init__(self) -> None:
        self.conn = rtmp.RtmpConnection(rtmp.Role.SERVER)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.conn.receive_data(data, 0.0)
        published = False
        for event in self.conn.events():
            if isinstance(event, rtmp.ConnectRequested):
                self.conn.accept_connect()
            elif isinstance(event, rtmp.PublishRequested):
                self.conn.accept_publish(event.stream_id)
                published = True
        self.transport.write(self.conn.data_to_send())
        if published:
            self.transport.pause_reading()


@pytest.mark.serial  # fills socket buffers against a deadline: not under parallel load
@pytest.mark.solo
async def test_drain_waits_for_a_server_that_stops_reading() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StallingServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    high, blob_size = 256 * 1024, 128 * 1024
    try:
        pub = await RtmpPublisher.connect(
            f"rtmp://127.0.0.1:{port}/live/k", write_buffer_high=high, max_write_buffer=1 << 20
        )
        blob = encode_message(6, 9, pub.stream_id, 0, bytes(blob_size), pub.chunk_size)
        blocked = False
        for _ in range(512):  # at most 64 MiB: far beyond any kernel socket buffering
            pub.send_prechunked(blob)
            assert pub.write_buffer_size <= high + len(blob)
            try:
                await asyncio.wait_for(pub.drain(), 1.0)
            except TimeoutError:
                blocked = True
                break
        assert blocked, "drain() never waited although the server stopped reading"
        assert not pub.writable
        # a caller that ignores drain() hits the hard bound instead of growing memory
        with pytest.raises(RtmpClientError, match="must drain"):
            for _ in range(64):
                pub.send_prechunked(blob)
        assert pub.write_buffer_size <= (1 << 20) + len(blob)
        await pub.close(grace=0.5)  # the server never answers: abort after the grace
        assert pub.closed
    finally:
        server.close()
