"""The aiortc glue: offer checks, codec choice, public-address candidates, the taps."""

from __future__ import annotations

import struct

import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
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
    tap_encoded_frames,
    with_public_ips,
)
from server.webrtc.video_tap import VideoTap


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


async def test_the_tap_takes_encoded_frames_before_the_decoder() -> None:
    """Guards the one private detail of aiortc we rely on (pinned minor version)."""
    pc = RTCPeerConnection()
    try:
        receiver: RTCRtpReceiver = pc.addTransceiver("video").receiver
        seen: list[JitterFrame] = []
        tap_encoded_frames(receiver, seen.append)
        queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        frame = JitterFrame(b"\x00\x00\x00\x01\x65", 1234)
        queue.put((None, frame))
        assert seen == [frame]
        assert queue.empty()
        queue.put(None)  # the end marker still reaches the decoder thread
        assert queue.get_nowait() is None
    finally:
        await pc.close()


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


async def test_the_video_tap_takes_decrypted_h264_rtp_and_passes_the_rest_on() -> None:
    """Guards the private details of aiortc/aioice the WHIP video path relies on."""
    pc = new_peer()
    try:
        video = add_transceiver(pc, "video", "recvonly")
        add_transceiver(pc, "audio", "recvonly")
        await accept_offer(pc, await _offer("video", "audio"))
        dtls = video.receiver.transport
        connection = dtls.transport.iceGatherer._connection
        passed: list[bytes] = []
        connection.data_received = lambda data, component: passed.append(data)  # type: ignore[method-assign]
        units: list[AccessUnit] = []
        tap = VideoTap(video, Bounds(), 1_000_000, units.append, lambda: 0.0)
        tap.install()
        key = bytes(range(30))
        profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        dtls._rx_srtp = Session(Policy(key, Policy.SSRC_ANY_INBOUND, profile))
        tx = Session(Policy(key, Policy.SSRC_ANY_OUTBOUND, profile))
        h264 = min(tap.rtp.payload_types)
        idr = struct.pack("!BBHII", 0x80, 0x80 | h264, 1, 90000, 7) + b"\x65\x88\x84"
        opus = struct.pack("!BBHII", 0x80, 111, 1, 960, 8) + b"\xfc\xff"
        dtls_record = b"\x16\xfe\xfd" + bytes(20)
        for data in (tx.protect(idr), tx.protect(opus), dtls_record):
            connection.data_received(data, 1)
        assert units == [AccessUnit(0, [b"\x65\x88\x84"])]
        assert len(passed) == 2 and passed[1] == dtls_record  # Opus and DTLS: aiortc's
    finally:
        await pc.close()
