"""Real SRT callers publishing to relaycast (protocols.md section 7, tests 2-4, 6, 7):
ffmpeg (libsrt 1.5.1) plain, AES-128 and AES-256, srt-live-transmit, GStreamer srtsink;
each goes live and plays over HLS. Refusals carry the right rejection code. A lossy
relay (3 % of data packets dropped) loses no frame."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench.hostile_attacks import conclusion_flood
from server.bus import Registry, StreamGrant
from server.ingest import srt as srt_ingest
from server.ingest.manager import IngestManager
from server.ingest.srt import SrtIngestServer
from server.protocols import srt
from server.settings import IngestSettings, SrtSettings
from tests.conftest import require_program
from tests.interop.conftest import (
    Peers,
    Relaycast,
    StartRelaycast,
    require_gst_element,
    wait_for,
)
from tests.interop.rawpeers import srt_call
from tests.interop.udp_relay import LossyRelay

pytestmark = pytest.mark.interop

PASS = "supersecret123"
SECONDS = 12  # publishers run at most this long; each test stops them once it has seen enough


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    """1 s segments: HLS has something to probe a second after going live."""
    return {"RELAYCAST_HLS__TARGET_DURATION": "1"}


def srt_base(relaycast: Relaycast) -> str:
    url = relaycast.server.srt_url
    assert url, relaycast.log()
    return url


def ffmpeg_srt(
    url: str, seconds: float = SECONDS, *, realtime: bool = True, loglevel: str = "warning"
) -> list[str]:
    """ffmpeg 5.1 + libsrt publishing H.264/AAC in MPEG-TS (libsrt's own messages,
    rejections included, show from ``info`` on)."""
    return [
        require_program("ffmpeg"),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        loglevel,
        *(["-re"] if realtime else []),
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "mpegts",
        url,
    ]


def ffprobe_json(target: str, *args: str) -> dict[str, Any] | str:
    out = subprocess.run(
        [require_program("ffprobe"), "-v", "error", *args, "-of", "json", target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        return out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def probe_hls(url: str) -> dict[str, str]:
    """Codec per stream type once ffprobe finds both video and audio in the HLS."""

    def fetch() -> dict[str, Any] | str:
        return ffprobe_json(url, "-show_entries", "stream=codec_name,codec_type")

    def ready(doc: dict[str, Any] | str) -> bool:
        types = {s["codec_type"] for s in doc.get("streams", [])} if isinstance(doc, dict) else ()
        return {"video", "audio"} <= set(types)

    doc = wait_for(fetch, ready, 20, "ffprobe to find video and audio in the HLS")
    assert isinstance(doc, dict)
    return {s["codec_type"]: s["codec_name"] for s in doc["streams"]}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ publishers


def _ffmpeg_plain(peers: Peers, base: str, key: str) -> None:
    url = f"{base}?streamid=#!::r=live/{key},m=publish&latency=200000&pkt_size=1316"
    peers.start("ffmpeg", ffmpeg_srt(url))


def _ffmpeg_aes(pbkeylen: int) -> Callable[[Peers, str, str], None]:
    def start(peers: Peers, base: str, key: str) -> None:
        url = (
            f"{base}?streamid=#!::r=live/{key},m=publish&passphrase={PASS}"
            f"&pbkeylen={pbkeylen}&latency=200000&pkt_size=1316"
        )
        peers.start("ffmpeg", ffmpeg_srt(url))

    return start


def _srt_live_transmit(peers: Peers, base: str, key: str) -> None:
    """protocols.md test 3: ffmpeg -> UDP -> srt-live-transmit caller (AES-256)."""
    port = free_udp_port()
    target = f"{base}?mode=caller&streamid=#!::r=live/{key},m=publish&passphrase={PASS}&pbkeylen=32"
    slt = require_program("srt-live-transmit")
    peers.start("srt-live-transmit", [slt, "-t", str(SECONDS), f"udp://127.0.0.1:{port}", target])
    time.sleep(0.3)
    peers.start("ffmpeg", ffmpeg_srt(f"udp://127.0.0.1:{port}?pkt_size=1316"))


def _gstreamer(peers: Peers, base: str, key: str) -> None:
    """protocols.md test 4: videotestsrc + audiotestsrc -> mpegtsmux -> srtsink (AES-128)."""
    for element in ("srtsink", "x264enc", "voaacenc", "mpegtsmux"):
        require_gst_element(element)
    gst = require_program("gst-launch-1.0")
    pipeline = (
        "videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=25/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! "
        "h264parse config-interval=-1 ! queue ! mux. "
        "audiotestsrc is-live=true ! audioconvert ! voaacenc ! aacparse ! queue ! mux. "
        f'mpegtsmux name=mux alignment=7 ! srtsink uri="{base}?mode=caller" '
        f'streamid="#!::r=live/{key},m=publish" passphrase={PASS} pbkeylen=16 latency=200'
    )
    peers.start("gst-launch", [gst, "-q", *shlex.split(pipeline)], limit=SECONDS)


PUBLISHERS: dict[str, tuple[Callable[[Peers, str, str], None], bool, int]] = {
    # name: (start, stream has a passphrase, expected key length)
    "ffmpeg-plain": (_ffmpeg_plain, False, 0),
    "ffmpeg-aes128": (_ffmpeg_aes(16), True, 16),
    "ffmpeg-aes256": (_ffmpeg_aes(32), True, 32),
    "srt-live-transmit-aes256": (_srt_live_transmit, True, 32),
    "gstreamer-aes128": (_gstreamer, True, 16),
}


@pytest.mark.parametrize("publisher", list(PUBLISHERS))
def test_publisher_goes_live_healthy_and_plays_over_hls(
    relaycast: Relaycast, peers: Peers, publisher: str
) -> None:
    start, encrypted, key_length = PUBLISHERS[publisher]
    fields = {"srtPassphrase": PASS} if encrypted else {}
    stream = relaycast.api.create_stream(publisher, reconnectWindowSeconds=0, **fields)
    sid, key = stream["streamId"], stream["ingest"]["streamKey"]
    assert stream["ingest"]["srtUrl"] == srt_base(relaycast)
    assert stream["ingest"]["srtFullUrl"] == (
        f"{srt_base(relaycast)}?streamid=#!::r=live/{key},m=publish"
    )
    start(peers, srt_base(relaycast), key)

    health = relaycast.api.wait_health(
        sid,
        lambda h: h["state"] == "live" and bool((h.get("ingest") or {}).get("video")),
        timeout=15,
        what="live video",
    )
    ingest = health["ingest"]
    assert ingest["protocol"] == "srt" and ingest["remoteAddress"].startswith("127.0.0.1:")
    assert (ingest["video"]["codec"], ingest["video"]["width"]) == ("h264", 320)
    link = ingest["srt"]
    assert link["encrypted"] is encrypted and link["keyLength"] == key_length
    assert link["latencyMs"] >= 120 and link["packetsReceived"] > 0
    assert link["packetsDropped"] == 0

    assert probe_hls(stream["playback"]["hlsUrl"]) == {"video": "h264", "audio": "aac"}
    assert key not in relaycast.log()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=15) as resp:
        body: bytes = resp.read()
        return body


def test_first_hls_init_segment_has_both_announced_tracks(
    relaycast: Relaycast, peers: Peers
) -> None:
    """ffmpeg's first video keyframe comes before its first ADTS frame: the packager
    waits (bounded) for the audio the PMT announced, so the first init segment has both
    tracks and the playlist does not start with a video-only init and a discontinuity."""
    stream = relaycast.api.create_stream("first-init", reconnectWindowSeconds=0)
    _ffmpeg_plain(peers, srt_base(relaycast), stream["ingest"]["streamKey"])
    relaycast.api.wait_state(stream["streamId"], "live", timeout=15)
    media = stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")
    playlist = wait_for(
        lambda: _get(media).decode(),
        lambda text: len(re.findall(r"^seg\d+\.m4s", text, re.M)) >= 3,
        15,
        "three segments",
    )
    assert not re.search(r"^#EXT-X-DISCONTINUITY$", playlist, re.M), playlist
    maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    assert len(set(maps)) == 1, playlist
    init = _get(media.replace("media.m3u8", maps[0]))
    assert init.count(b"trak") == 2 and b"avc1" in init and b"mp4a" in init


def test_video_only_source_starts_without_waiting(relaycast: Relaycast, peers: Peers) -> None:
    """The PMT announces video only: nothing to wait for, the first segment is
    published one target duration (1 s here) after going live."""
    stream = relaycast.api.create_stream("video-only", reconnectWindowSeconds=0)
    key = stream["ingest"]["streamKey"]
    command = ffmpeg_srt(f"{srt_base(relaycast)}?streamid=#!::r=live/{key},m=publish")
    sine = command.index("sine=frequency=1000:sample_rate=48000")
    del command[sine - 3 : sine + 1]  # -f lavfi -i sine
    codec = command.index("-c:a")
    command[codec : codec + 4] = ["-an"]
    peers.start("ffmpeg", command)
    relaycast.api.wait_state(stream["streamId"], "live", timeout=15)
    started = time.monotonic()
    playlist = _get(stream["playback"]["hlsUrl"].replace("master.m3u8", "media.m3u8")).decode()
    assert time.monotonic() - started < 2.5
    maps = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    init = _get(stream["playback"]["hlsUrl"].replace("master.m3u8", maps[0]))
    assert init.count(b"trak") == 1 and b"avc1" in init


# ------------------------------------------------------------------ refusals


def _wait_log(relaycast: Relaycast, text: str) -> None:
    wait_for(relaycast.log, lambda log: text in log, 10, f"server log line {text!r}")


def _recorded_refusal(
    relaycast: Relaycast, reason: str, needle: str, stream_id: str | None
) -> None:
    """``GET /v1/ingest/failures`` lists this SRT refusal: its reason, ``needle`` in its
    detail or (masked) attempted stream ID, tied to ``stream_id`` when one is given."""

    def mine(f: dict[str, Any]) -> bool:
        return (
            f["protocol"] == "srt"
            and f["reason"] == reason
            and needle in f["detail"] + f["attempted"]
            and (stream_id is None or f.get("streamId") == stream_id)
        )

    wait_for(
        lambda: relaycast.api.ok("GET", "/v1/ingest/failures?limit=20"),
        lambda doc: any(mine(f) for f in doc["failures"]),
        10,
        f"an srt refusal recorded as {reason}",
    )


@pytest.mark.parametrize(
    ("case", "libsrt_says", "logged", "reason"),
    [
        ("wrong-key", "Application-defined rejection reason", "FORBIDDEN (2403)", "unknown-key"),
        ("wrong-passphrase", "Incorrect passphrase", "BADSECRET (1010)", "bad-passphrase"),
        (
            "no-passphrase",
            "Password required or unexpected",
            "UNSECURE (1011)",
            "bad-passphrase",
        ),
        ("file-mode", "MessageAPI/StreamAPI collision", "MESSAGEAPI (1012)", "protocol-error"),
    ],
)
def test_refused_callers_get_the_right_code(
    relaycast: Relaycast, peers: Peers, case: str, libsrt_says: str, logged: str, reason: str
) -> None:
    stream = relaycast.api.create_stream(case, srtPassphrase=PASS)
    key = stream["ingest"]["streamKey"]
    base = f"{srt_base(relaycast)}?streamid=#!::r=live/{key},m=publish"
    if case == "file-mode":
        cmd = [
            require_program("srt-file-transmit"),
            "-loglevel:warning",
            "file:///etc/hostname",
            f"{base}&passphrase={PASS}",
        ]
    else:
        url = {
            "wrong-key": base.replace(key, "sk_doesnotexist") + f"&passphrase={PASS}",
            "wrong-passphrase": f"{base}&passphrase=wrongsecret999",
            "no-passphrase": base,
        }[case]
        cmd = ffmpeg_srt(url, 2, loglevel="info")
    peer = peers.start(case, cmd, limit=20)
    code = peer.wait(15)
    assert code != 0 or case == "file-mode", peer.output()  # that one only says so
    assert libsrt_says in peer.output()
    _wait_log(relaycast, logged)
    tied = stream["streamId"] if reason == "bad-passphrase" else None
    _recorded_refusal(relaycast, reason, "sk_d****" if case == "wrong-key" else logged, tied)
    # refused before a session was opened: a wrong passphrase leaves no trace either
    assert relaycast.api.state(stream["streamId"]) == "idle"
    assert key not in relaycast.log()


def test_exact_rejection_codes_on_the_wire(relaycast: Relaycast) -> None:
    port = int(srt_base(relaycast).rsplit(":", 1)[1])
    stream = relaycast.api.create_stream("codes", srtPassphrase=PASS)
    key = stream["ingest"]["streamKey"]
    cases = [
        ("#!::r=live/sk_doesnotexist,m=publish", PASS, 2403),
        (f"#!::r=live/{key},m=request", PASS, 2404),  # playback of an edge id, not a key
        (f"#!::r=live/{key},m=publish", "wrongsecret999", 1010),
        (f"#!::r=live/{key},m=publish", None, 1011),
    ]
    for streamid, passphrase, code in cases:
        answer = srt_call("127.0.0.1", port, streamid, passphrase)
        assert isinstance(answer, srt.Rejected) and answer.code == code, (streamid, answer)
    accepted = srt_call(
        "127.0.0.1", port, f"%23!::r=live/{key},m=publish", PASS
    )  # pasted encoded: decoded
    assert isinstance(accepted, srt.ConnectionEstablished) and accepted.key_length == 16


# ------------------------------------------------------------------ loss recovery


class _Directory:
    def __init__(self, grant: StreamGrant) -> None:
        self.grant = grant

    async def authorize(self, stream_key: str) -> StreamGrant | None:
        return self.grant if stream_key == "sk_relay" else None

    async def session_opened(self, stream_id: str, protocol: str, remote: str, at: datetime) -> str:
        return "ses_relay"

    async def stream_live(self, stream_id: str, at: datetime) -> None:
        return None

    async def session_closed(
        self, stream_id: str, session_id: str, at: datetime, bytes_in: int, error: str | None
    ) -> None:
        return None


def _count_frames(path: Path) -> dict[str, int]:
    doc = ffprobe_json(
        str(path), "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames"
    )
    assert isinstance(doc, dict), doc
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in doc["streams"]}


@pytest.fixture
def source_ts(tmp_path: Path) -> Path:
    """5 s of H.264/AAC in MPEG-TS, encoded ahead so that sending it is cheap."""
    source = tmp_path / "sent.ts"
    made = subprocess.run(ffmpeg_srt(str(source), 5, realtime=False), timeout=60)
    assert made.returncode == 0 and source.stat().st_size > 0
    return source


async def test_three_percent_loss_is_recovered_without_missing_frames(
    tmp_path: Path, source_ts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg -> relay dropping 3 % of data packets -> our listener (in this process,
    so the TS it received can be kept): the same frames as the file that was sent.
    ``linger`` keeps ffmpeg's socket open after the last packet: without it libsrt
    (live mode) closes at once, and a tail packet lost on the relay is never resent."""
    source = source_ts
    received = bytearray()

    demux = srt_ingest.SrtIngestConnection._demux

    def recording(connection: srt_ingest.SrtIngestConnection, chunks: list[bytes]) -> None:
        # the demuxer may be compiled (no subclass of it): record what it is fed here
        if connection.claim is not None:
            received.extend(b"".join(chunks))
        demux(connection, chunks)

    monkeypatch.setattr(srt_ingest.SrtIngestConnection, "_demux", recording)
    manager = IngestManager(
        _Directory(StreamGrant("ls_relay", "env", True, 0)), Registry(), IngestSettings()
    )
    server = SrtIngestServer(manager, SrtSettings(port=0, latency_ms=300))
    port = await server.listen("127.0.0.1", 0)
    seen: list[srt_ingest.SrtIngestConnection] = []
    with LossyRelay(("127.0.0.1", port), loss=0.03) as relay:
        url = (
            f"srt://127.0.0.1:{relay.port}?streamid=#!::r=live/sk_relay,m=publish"
            "&latency=300000&linger=3"
        )
        proc = await asyncio.create_subprocess_exec(
            require_program("ffmpeg"), "-hide_banner", "-loglevel", "warning", "-nostdin",
            "-re", "-i", str(source), "-c", "copy", "-f", "mpegts", url,
        )  # fmt: skip
        try:
            while proc.returncode is None:
                seen += [c for c in server.connections.values() if c not in seen]
                try:
                    await asyncio.wait_for(proc.wait(), 0.1)
                except TimeoutError:
                    continue
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await asyncio.sleep(0.5)
    await server.close()
    assert proc.returncode == 0
    assert len(seen) == 1
    stats = seen[0].stats()
    assert stats is not None
    assert relay.stats.dropped >= 10, relay.stats
    assert stats.packets_lost >= relay.stats.dropped // 2
    assert stats.packets_retransmitted_received >= stats.packets_lost
    assert stats.packets_dropped == 0
    assert seen[0].demux.stats.cc_errors == 0 and seen[0].demux.stats.dropped_pes == 0
    got = tmp_path / "received.ts"
    got.write_bytes(bytes(received))
    assert _count_frames(got) == _count_frames(source)


async def test_light_traffic_is_read_on_the_tick_and_a_flood_wakes_the_loop_again(
    source_ts: Path,
) -> None:
    """ffmpeg publishing one stream: the listener's tick reads the socket (no wake-up
    per datagram); a flood of datagrams (more than TICK_READ_MAX a tick) switches back
    to reading on every wake-up, and once it ends the tick reads again. No media lost."""
    manager = IngestManager(
        _Directory(StreamGrant("ls_tick", "env", True, 0)), Registry(), IngestSettings()
    )
    server = SrtIngestServer(manager, SrtSettings(port=0))
    port = await server.listen("127.0.0.1", 0)
    endpoint = server._endpoint
    assert endpoint is not None and endpoint.reading
    url = f"srt://127.0.0.1:{port}?streamid=#!::r=live/sk_relay,m=publish"
    proc = await asyncio.create_subprocess_exec(
        require_program("ffmpeg"), "-hide_banner", "-loglevel", "warning", "-nostdin",
        "-re", "-i", str(source_ts), "-c", "copy", "-f", "mpegts", url,
    )  # fmt: skip

    async def until(condition: Callable[[], bool], what: str) -> None:
        for _ in range(300):
            if condition():
                return
            await asyncio.sleep(0.01)
        pytest.fail(what)

    try:
        await until(lambda: bool(server.connections) and not endpoint.reading, "tick reading")
        [connection] = server.connections.values()
        garbage = struct.pack(">IIII", 0, 0, 0, 0xDEAD) + bytes(100)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            woke = False
            for _ in range(100):
                for _ in range(srt_ingest.TICK_READ_MAX * 2):
                    flood.sendto(garbage, ("127.0.0.1", port))
                await asyncio.sleep(0.01)
                if endpoint.reading:
                    woke = True
                    break
        assert woke, "a flood kept the tick reading"
        await until(lambda: not endpoint.reading, "tick reading after the flood")
        await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stats = connection.stats()
    assert stats is not None and stats.packets_dropped == 0
    assert connection.demux.stats.frames > 100 and connection.demux.stats.cc_errors == 0
    await server.close()
    assert proc.returncode == 0


# ------------------------------------------------------------------ conclusion flood

FLOOD = 3000


def _srt_refusals(base: str) -> int:
    """Refused SRT publishes in ``/metrics``, every reason summed."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(r'^relaycast_auth_failures_total\{protocol="srt",[^}]*\} (\S+)$', text, re.M)
    return int(sum(float(v) for v in found))


def test_a_conclusion_flood_is_counted_and_the_log_stays_bounded(
    start_relaycast: StartRelaycast,
) -> None:
    """3000 bad-key conclusions (one cookie, a new caller socket ID each) at the real
    server's SRT port: all of them counted in /metrics, but at most 10 refusal lines a
    second in the log, one line summing up the rest, and no traceback."""
    relaycast = start_relaycast()
    port = int(srt_base(relaycast).rsplit(":", 1)[1])
    base = relaycast.server.base
    before = _srt_refusals(base)
    start_line = len(relaycast.log().splitlines())
    caller = srt.SrtConnection.caller(time.monotonic(), streamid="#!::r=live/sk_flood,m=publish")
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(5)
        [induction] = caller.datagrams_to_send()
        sock.send(induction)
        caller.receive(sock.recv(2048), time.monotonic())
        [conclusion] = caller.datagrams_to_send()
        for i, datagram in enumerate(conclusion_flood(conclusion, FLOOD)):
            sock.send(datagram)
            if i % 100 == 99:
                time.sleep(0.01)  # stay within the server's socket buffer: count, not loss
        counted = wait_for(
            lambda: _srt_refusals(base) - before, lambda n: n >= FLOOD, 30, "every refusal counted"
        )
    assert counted == FLOOD
    wait_for(
        lambda: relaycast.log().count("more refused-publish lines in the last 1 s"),
        bool,
        10,
        "the suppressed-lines summary",
    )
    lines = relaycast.log().splitlines()[start_line:]
    seconds = time.monotonic() - started
    refused = [line for line in lines if "refused srt publisher" in line or "rejected" in line]
    assert 10 <= len(refused) <= 10 * (seconds + 2), (len(refused), seconds)
    assert len(lines) < 10 * (seconds + 2) * 2 + 20, "\n".join(lines[-40:])
    assert "Traceback" not in relaycast.log()
