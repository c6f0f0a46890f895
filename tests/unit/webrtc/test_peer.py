"""The aiortc glue: offer checks, codec choice, public-address candidates, the taps."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from pylibsrtp import Policy, Session

from server.media.rtp_h264 import AccessUnit, Bounds
from server.settings import WebRtcSettings
from server.webrtc.peer import (
    BadOffer,
    PortsExhausted,
    accept_offer,
    add_transceiver,
    check_candidates,
    check_offer,
    new_peer,
    with_public_ips,
)
from server.webrtc.rtp_tap import RtpTap


async def _offer(*kinds: str, direction: str = "sendonly") -> str:
    pc = RTCPeerConnection()
    for kind in kinds:
        pc.addTransceiver(kind, direction=direction)
    try:
        return str((await pc.createOffer()).sdp)
    finally:
        await pc.close()


async def test_check_offer_names_the_kinds_it_can_carry() -> None:
    assert check_offer(await _offer("video", "audio"), "send") == {"video", "audio"}
    assert check_offer(await _offer("video", direction="recvonly"), "recv") == {"video"}


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("v=0\r\nm=video port UDP/TLS/RTP/SAVPF 96\r\n", "malformed SDP offer"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no media section"),
    ],
)
def test_check_offer_refuses_what_cannot_be_answered(sdp: str, message: str) -> None:
    with pytest.raises(BadOffer, match=message):
        check_offer(sdp, "send")


async def test_check_offer_wants_h264_sent_our_way() -> None:
    with pytest.raises(BadOffer, match=r"no H\.264"):
        check_offer(await _offer("audio"), "send")
    with pytest.raises(BadOffer, match=r"no H\.264"):  # a WHIP offer that only receives
        check_offer(await _offer("video", direction="recvonly"), "send")
    with pytest.raises(BadOffer, match=r"no H\.264"):
        check_offer((await _offer("video")).replace("H264", "H263"), "send")


async def test_answers_choose_h264_and_opus_only() -> None:
    pc = new_peer()
    try:
        offer = await _offer("video", "audio")  # aiortc offers VP8 first, like browsers
        assert offer.index("VP8") < offer.index("H264")
        add_transceiver(pc, "video", "recvonly")
        add_transceiver(pc, "audio", "recvonly")
        await accept_offer(pc, offer)
        answer = str((await pc.createAnswer()).sdp)
    finally:
        await pc.close()
    rtpmaps = [line for line in answer.splitlines() if line.startswith("a=rtpmap:")]
    names = {line.split(" ")[1].split("/")[0] for line in rtpmaps}
    assert names == {"H264", "rtx", "opus"}


def test_public_ips_repeat_each_host_candidate_on_the_public_address() -> None:
    sdp = "\r\n".join(
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=candidate:abc 1 udp 2130706431 10.0.0.5 50000 typ host",
            "a=candidate:def 1 udp 1694498815 198.51.100.1 50000 typ srflx"
            " raddr 10.0.0.5 rport 50000",
            "a=end-of-candidates",
        ]
    )
    out = with_public_ips(sdp, ["203.0.113.7"]).split("\r\n")
    assert out[2] == "a=candidate:abc1 1 udp 2130706430 203.0.113.7 50000 typ host"
    assert len(out) == 5  # the srflx candidate is not repeated
    assert with_public_ips(sdp, []) == sdp


def test_port_range_settings_go_together_and_in_order() -> None:
    assert WebRtcSettings().udp_ports is None
    assert WebRtcSettings(udp_port_min=40000, udp_port_max=40002).udp_ports == range(40000, 40003)
    with pytest.raises(ValueError, match="set both"):
        WebRtcSettings(udp_port_min=40000)
    with pytest.raises(ValueError, match="at least"):
        WebRtcSettings(udp_port_min=40002, udp_port_max=40000)


def test_an_answer_without_candidates_means_the_range_is_full() -> None:
    answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    check_candidates(answer, None)  # ephemeral ports: not our call
    check_candidates(answer + "a=candidate:1 1 udp 1 10.0.0.1 40000 typ host\r\n", range(1, 2))
    with pytest.raises(PortsExhausted, match="40000-40001"):
        check_candidates(answer, range(40000, 40002))


_KEY = bytes(range(30))
_PROFILE = Policy.SRTP_PROFILE_AES128_CM_SHA1_80


async def _tapped(
    pc: RTCPeerConnection, clock: list[float]
) -> tuple[RtpTap, Any, list[bytes], list[AccessUnit], list[tuple[int, bytes]]]:
    """A negotiated WHIP-side peer with its tap installed and SRTP keys set."""
    video = add_transceiver(pc, "video", "recvonly")
    audio = add_transceiver(pc, "audio", "recvonly")
    await accept_offer(pc, await _offer("video", "audio"))
    dtls = video.receiver.transport
    connection = dtls.transport.iceGatherer._connection
    passed: list[bytes] = []
    connection.data_received = lambda data, component: passed.append(data)  # type: ignore[method-assign]
    units: list[AccessUnit] = []
    opus: list[tuple[int, bytes]] = []
    sinks = (units.append, lambda ticks, packet: opus.append((ticks, packet)))
    tap = RtpTap(video, audio, Bounds(), 1_000_000, sinks, lambda: clock[0])
    tap.install()
    dtls._rx_srtp = Session(Policy(_KEY, Policy.SSRC_ANY_INBOUND, _PROFILE))
    return tap, connection, passed, units, opus


async def test_the_rtp_tap_takes_decrypted_rtp_and_passes_the_rest_on() -> None:
    """Guards the private details of aiortc/aioice the WHIP media path relies on."""
    pc = new_peer()
    try:
        tap, connection, passed, units, opus = await _tapped(pc, [0.0])
        tx = Session(Policy(_KEY, Policy.SSRC_ANY_OUTBOUND, _PROFILE))
        h264, opus_pt = min(tap.video.payload_types), min(tap.audio.payload_types)
        idr = struct.pack("!BBHII", 0x80, 0x80 | h264, 1, 90000, 7) + b"\x65\x88\x84"
        frame = struct.pack("!BBHII", 0x80, opus_pt, 1, 960, 8) + b"\xfc\xff"
        other = struct.pack("!BBHII", 0x80, 0x7F, 1, 960, 9) + b"\x00"
        dtls_record = b"\x16\xfe\xfd" + bytes(20)
        for data in (tx.protect(idr), tx.protect(frame), tx.protect(other), dtls_record):
            connection.data_received(data, 1)
        assert units == [AccessUnit(0, [b"\x65\x88\x84"])]
        assert opus == [(0, b"\xfc\xff")]
        assert len(passed) == 2 and passed[1] == dtls_record  # the rest is aiortc's
    finally:
        await pc.close()


async def test_lost_pictures_ask_for_a_keyframe_at_most_every_half_second() -> None:
    pc = new_peer()
    try:
        clock = [0.0]
        tap, connection, _, units, _ = await _tapped(pc, clock)
        asked: list[int] = []

        async def pli(ssrc: int) -> None:
            asked.append(ssrc)

        tap.receiver._send_rtcp_pli = pli  # type: ignore[method-assign,assignment]
        tx = Session(Policy(_KEY, Policy.SSRC_ANY_OUTBOUND, _PROFILE))
        h264 = min(tap.video.payload_types)
        for seq, now in enumerate((0.0, 0.1, 0.2, 0.6)):
            clock[0] = now
            tail = b"\x7c\x41\x00"  # an FU-A end fragment whose start never came
            packet = struct.pack("!BBHII", 0x80, 0x80 | h264, seq, seq * 3000, 7) + tail
            connection.data_received(tx.protect(packet), 1)
            await asyncio.sleep(0)
        assert units == [] and asked == [7, 7]
    finally:
        await pc.close()
