"""WHIP ingest and WHEP playback against a real ``relaycast serve``, with aiortc peers
over real UDP (ICE, DTLS, SRTP): HLS reads back H.264 + AAC, WHEP plays, refusals get
their status codes, and sessions end within the timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import Relaycast, StartRelaycast, wait_for
from tests.interop.test_srt_ingest import probe_hls
from tests.interop.webrtc_peers import (
    FileTrack,
    WhepViewer,
    WhipPublisher,
    delete,
    make_media,
    post_sdp,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    return {
        "RELAYCAST_WEBRTC__CONNECT_TIMEOUT": "3",
        "RELAYCAST_WEBRTC__IDLE_TIMEOUT": "2",
        "RELAYCAST_WEBRTC__OFFER_TIMEOUT": "2",
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_media(tmp_path_factory.mktemp("webrtc-media"))


async def _wait(fn: Any, ok: Any, seconds: float, what: str) -> Any:
    return await asyncio.to_thread(wait_for, fn, ok, seconds, what)


async def test_whip_publish_goes_live_with_h264_and_aac_in_hls(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whip", reconnectWindowSeconds=0)
    assert stream["ingest"]["whipUrl"].endswith("/whip/live")
    assert stream["playback"]["whepUrl"].endswith(f"/whep/{stream['edgeId']}")
    publisher = WhipPublisher(relaycast.server.base, stream["ingest"]["streamKey"], *media)
    try:
        answer = await publisher.start()
        assert answer.status == 201, answer.body
        assert answer.location is not None and answer.location.startswith("/whip/live/")
        assert "a=rtpmap" in answer.body and "H264" in answer.body
        health = await _wait(
            lambda: relaycast.api.health(stream["streamId"]),
            lambda h: (
                h["state"] == "live"
                and all((h.get("ingest") or {}).get(kind) for kind in ("video", "audio"))
            ),
            15,
            "the WHIP stream to be live with video and audio",
        )  # either may come first: a keyframe cut at the start waits for the next one
        assert health["ingest"]["protocol"] == "whip"
        assert health["ingest"]["video"]["codec"] == "h264"
        assert health["ingest"]["audio"]["codec"] == "aac"
        codecs = await asyncio.to_thread(probe_hls, stream["playback"]["hlsUrl"])
        assert codecs == {"video": "h264", "audio": "aac"}
        status = await asyncio.to_thread(delete, relaycast.server.base + answer.location)
        assert status == 200
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "ended",
            10,
            "DELETE to end the session",
        )
    finally:
        await publisher.close()


def _offer(publisher: WhipPublisher) -> str:
    return str(publisher.pc.localDescription.sdp)


async def _offer_only(media: tuple[Path, Path]) -> WhipPublisher:
    """A peer with a real offer that is never sent (for refusals and ICE timeouts)."""
    publisher = WhipPublisher("http://unused", "", *media)
    publisher.tracks.append(FileTrack("video", media[0], 90_000))
    publisher.pc.addTransceiver(publisher.tracks[-1], direction="sendonly")
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    return publisher


async def test_whip_refusals_have_their_status_codes(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whip-refusals", reconnectWindowSeconds=0)
    key = stream["ingest"]["streamKey"]
    url = relaycast.server.base + "/whip/live"
    peer = await _offer_only(media)
    try:
        offer = _offer(peer)
        post = lambda sdp, k: asyncio.to_thread(post_sdp, url, sdp, k)  # noqa: E731
        assert (await post(offer, None)).status == 401
        assert (await post(offer, "rk_wrong")).status == 401
        assert (await post("v=0\r\nnonsense", key)).status == 400
        audio_only = offer.replace("H264", "X264")  # no H.264 left in the offer
        assert (await post(audio_only, key)).status == 400
        request = urllib.request.Request(
            url, data=b"{}", method="POST", headers={"Authorization": f"Bearer {key}"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
        assert err.value.code == 415
        relaycast.api.ok("POST", f"/v1/live-streams/{stream['streamId']}/stop")
        assert (await post(offer, key)).status == 403
        relaycast.api.ok("POST", f"/v1/live-streams/{stream['streamId']}/start")
        first = await post(offer, key)  # accepted, never connects: still holds the key
        assert first.status == 201, first.body
        second = await _offer_only(media)
        try:
            assert (await post(_offer(second), key)).status == 409
        finally:
            await second.close()
        # nothing connects: the first session ends within the connect timeout (3 s)
        started = time.monotonic()
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "ended",
            8,
            "the unconnected WHIP session to end",
        )
        assert time.monotonic() - started < 6
        assert "not connected within 3 s" in relaycast.log()
    finally:
        await peer.close()


def _workers(pid: int) -> set[int]:
    """The server's worker processes (multiprocessing spawns), by pid."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                    found.add(int(child))
    return found


async def test_killed_whip_publisher_ends_its_session_within_the_idle_timeout(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whip-kill", reconnectWindowSeconds=0)
    workers_before = _workers(relaycast.server.proc.pid)
    cmd = [
        sys.executable, "-m", "tests.interop.webrtc_peers",
        relaycast.server.base, stream["ingest"]["streamKey"], str(media[0]), str(media[1]),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220 - a spawn
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "201"
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "live",
            15,
            "the WHIP stream to be live",
        )
        transcoder = _workers(relaycast.server.proc.pid) - workers_before
        assert len(transcoder) == 1  # the session's Opus -> AAC worker
        proc.kill()  # no DTLS close, no DELETE: only silence tells
        killed = time.monotonic()
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "ended",
            10,
            "the killed publisher's session to end",
        )
        assert time.monotonic() - killed < 2 + 3  # idle_timeout 2 s, plus polling slack
        assert "no media for 2 s" in relaycast.log()
        # nothing left behind: the session's Opus -> AAC worker process is gone too
        await _wait(
            lambda: _workers(relaycast.server.proc.pid) & transcoder,
            lambda left: not left,
            5,
            "the session's transcoder process to exit",
        )
    finally:
        proc.kill()
        proc.wait()


async def test_whep_viewer_plays_video_and_the_publishers_opus_and_is_counted(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whep", reconnectWindowSeconds=0)
    publisher = WhipPublisher(relaycast.server.base, stream["ingest"]["streamKey"], *media)
    viewer = WhepViewer(stream["playback"]["whepUrl"])
    try:
        assert (await publisher.start()).status == 201
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "live",
            15,
            "the WHIP stream to be live",
        )
        answer = await viewer.start()
        assert answer.status == 201, answer.body
        assert answer.location is not None
        assert answer.location.startswith(f"/whep/{stream['edgeId']}/")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (  # noqa: ASYNC110 - counters, not an event
            viewer.frames["video"] < 60 or viewer.frames["audio"] < 50
        ):
            await asyncio.sleep(0.2)
        assert viewer.frames["video"] >= 60, viewer.frames
        assert viewer.frames["audio"] >= 50, viewer.frames
        assert viewer.size == (320, 240)
        viewers = relaycast.api.ok("GET", f"/v1/live-streams/{stream['streamId']}/viewership")
        assert viewers["current"]["webrtc"] == 1
        assert viewers["current"]["total"] >= 1
        status = await asyncio.to_thread(delete, relaycast.server.base + answer.location)
        assert status == 200
        await _wait(
            lambda: relaycast.api.ok("GET", f"/v1/live-streams/{stream['streamId']}/viewership"),
            lambda v: v["current"]["webrtc"] == 0,
            5,
            "the WHEP viewer to be uncounted",
        )
    finally:
        await viewer.close()
        await publisher.close()


async def test_whep_refuses_unknown_edges_and_private_streams_without_token(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    viewer = WhepViewer(relaycast.server.base + "/whep/nope")
    try:
        assert (await viewer.start()).status == 404
    finally:
        await viewer.close()
    stream = relaycast.api.create_stream(
        "whep-private", reconnectWindowSeconds=0, playbackPolicy="private"
    )
    publisher = WhipPublisher(relaycast.server.base, stream["ingest"]["streamKey"], *media)
    try:
        assert (await publisher.start()).status == 201
        await _wait(
            lambda: relaycast.api.state(stream["streamId"]),
            lambda s: s == "live",
            15,
            "the WHIP stream to be live",
        )
        refused = WhepViewer(stream["playback"]["whepUrl"])
        try:
            assert (await refused.start()).status == 401
        finally:
            await refused.close()
        token = relaycast.api.ok(
            "POST", f"/v1/live-streams/{stream['streamId']}/playback-tokens", {}, status=201
        )["token"]
        allowed = WhepViewer(f"{stream['playback']['whepUrl']}?token={token}")
        try:
            assert (await allowed.start()).status == 201
        finally:
            await allowed.close()
    finally:
        await publisher.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def _candidate_ports(sdp: str) -> set[int]:
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


async def test_media_ports_stay_in_the_configured_range_and_a_full_range_gets_503(
    start_relaycast: StartRelaycast, media: tuple[Path, Path]
) -> None:
    """One port: the publisher's candidates all use it (on every server address) and
    its media flows through it; the next session finds none free and is refused."""
    port = _free_udp_port()
    server = start_relaycast(
        env={
            "RELAYCAST_WEBRTC__UDP_PORT_MIN": str(port),
            "RELAYCAST_WEBRTC__UDP_PORT_MAX": str(port),
        }
    )
    stream = server.api.create_stream("ports", reconnectWindowSeconds=0)
    publisher = WhipPublisher(server.server.base, stream["ingest"]["streamKey"], *media)
    try:
        answer = await publisher.start()
        assert answer.status == 201, answer.body
        assert _candidate_ports(answer.body) == {port}
        await _wait(
            lambda: server.api.state(stream["streamId"]),
            lambda s: s == "live",
            15,
            "the WHIP stream to be live through the one port",
        )
        viewer = WhepViewer(stream["playback"]["whepUrl"])
        try:
            refused = await viewer.start()
            assert refused.status == 503, refused.body
            assert f"no free UDP port in webrtc.udp_port_min..max ({port}-{port})" in refused.body
        finally:
            await viewer.close()
    finally:
        await publisher.close()


def _raw_post(base: str, key: str, length: int, pieces: list[bytes], pause: float) -> str:
    """POST to /whip/live over a raw keep-alive socket, announcing ``length`` bytes and
    sending ``pieces`` ``pause`` s apart, as a slow network delivers them; the status
    line, and " (close)" when the server says it closes the connection."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /whip/live HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head)
        for n, piece in enumerate(pieces):
            if n:
                time.sleep(pause)
            sock.sendall(piece)
        answer = sock.makefile("rb")
        status = answer.readline().decode().strip()
        headers = []
        while line := answer.readline().strip():
            headers.append(line.decode().lower())
        return status + (" (close)" if "connection: close" in headers else "")


async def test_an_offer_arriving_in_pieces_is_read_whole_and_a_stalled_one_gets_408(
    relaycast: Relaycast, media: tuple[Path, Path]
) -> None:
    stream = relaycast.api.create_stream("whip-pieces", reconnectWindowSeconds=0)
    key, base = stream["ingest"]["streamKey"], relaycast.server.base
    peer = await _offer_only(media)
    try:
        offer = _offer(peer).encode()
        pieces = [offer[: len(offer) // 2], offer[len(offer) // 2 :]]
        whole = await asyncio.to_thread(_raw_post, base, key, len(offer), pieces, 0.3)
        assert whole == "HTTP/1.1 201 Created"  # (kept alive)
        # the body stops halfway: refused once webrtc.offer_timeout (2 s here) has passed
        started = time.monotonic()
        stalled = await asyncio.to_thread(_raw_post, base, key, len(offer), pieces[:1], 0)
        assert stalled == "HTTP/1.1 408 Request Timeout (close)"
        assert time.monotonic() - started < 2 + 3
    finally:
        await peer.close()
