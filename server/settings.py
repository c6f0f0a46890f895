"""Settings sections owned by the media plane.

The control plane composes these into the one settings model the ``relaycast``
command loads (``control_api.settings``); they live here so that ``server`` never
has to import ``control_api`` to learn its own limits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyAddress, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RtmpSettings(_Section):
    """RTMP ingest listener and its per-connection limits."""

    enabled: bool = True
    port: int = Field(1935, ge=0, le=65535)
    app: str = Field("live", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    # Seconds from TCP accept until a publish is accepted (handshake, connect, key check).
    handshake_timeout: float = Field(10.0, gt=0, le=300)
    idle_timeout: float = Field(30.0, gt=0, le=3600)
    max_chunk_size: int = Field(65536, ge=128, le=16_777_215)
    max_message_size: int = Field(16 * 1024 * 1024, ge=4096, le=256 * 1024 * 1024)
    max_connections: int = Field(1000, ge=1, le=100_000)
    # Bytes a connection may hold in unfinished (and deferred) messages before its publish
    # is accepted: anyone reaching the port gets that far, so it is small.
    max_unpublished_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    # The same bound once publishing (a keyframe of a high-bitrate stream must fit).
    max_partial_bytes: int = Field(32 * 1024 * 1024, ge=65_536, le=1024 * 1024 * 1024)
    # All connections together, beyond each one's first max_unpublished_bytes: unfinished
    # messages over this fail the connection that started them.
    max_partial_bytes_total: int = Field(
        256 * 1024 * 1024, ge=1024 * 1024, le=64 * 1024 * 1024 * 1024
    )
    # Publishes refused for an unknown key: from the 4th refusal of one address within a
    # minute the answer waits 0.25 s, doubling up to this many seconds.
    refusal_delay_max: float = Field(5.0, ge=0, le=60)
    # Addresses whose refusals are remembered (beyond: the oldest are forgotten).
    refusal_addresses: int = Field(10_000, ge=1, le=1_000_000)
    # Seconds a publisher's bytes may wait so that all publishers are read in one pass
    # (one wake-up per tick instead of one per message); 0 = read each as it arrives.
    # RTMPS connections are always read as they arrive.
    read_tick: float = Field(0.02, ge=0, le=0.02)


class RtmpsSettings(_Section):
    """RTMP over TLS; enabled when both a certificate and a key are configured."""

    port: int = Field(1936, ge=0, le=65535)
    cert: Path | None = None
    key: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert is not None and self.key is not None


class SrtSettings(_Section):
    """SRT ingest listener."""

    enabled: bool = True
    port: int = Field(9000, ge=0, le=65535)
    latency_ms: int = Field(120, ge=20, le=10_000)
    handshake_timeout: float = Field(5.0, gt=0, le=60)
    peer_idle_timeout: float = Field(5.0, gt=0, le=60)
    max_connections: int = Field(1000, ge=1, le=100_000)
    # Callers whose key is being checked at once (more are refused with 1005 BACKLOG).
    max_pending_handshakes: int = Field(256, ge=1, le=65_536)
    # SO_RCVBUF of the UDP socket in bytes (the kernel caps it at net.core.rmem_max).
    receive_buffer: int = Field(4 * 1024 * 1024, ge=65_536, le=256 * 1024 * 1024)


class IngestSettings(_Section):
    """Rules shared by every ingest protocol."""

    takeover_silence_seconds: float = Field(3.0, gt=0, le=60)
    default_reconnect_window_seconds: int = Field(60, ge=0, le=3600)
    # Refused-publish log lines per second at most (the rest are counted, and one line
    # per second says how many were not logged): a flood of bad handshakes must not
    # flood the log.
    refusal_log_per_second: int = Field(10, ge=1, le=10000)


class HlsSettings(_Section):
    """HLS / LL-HLS packaging of every live stream (one packager per stream).

    Memory per stream is about (2 x ``window_segments`` + 1) segments of media: the
    playlist window plus the segments kept downloadable after they leave it (RFC 8216
    6.2.2: a removed segment stays available for its duration plus the playlist's).
    """

    # Container of media segments: "fmp4" (CMAF init + moof/mdat, needed for HEVC and
    # LL-HLS parts) or "ts" (MPEG-TS, for old players; H.264/AAC streams only -- an HEVC
    # stream is packaged as fMP4 whatever this says).
    segment_format: Literal["fmp4", "ts"] = "fmp4"
    # Segment duration in seconds. Segments are cut at the first video keyframe once this
    # long (earlier when the next keyframe would come too late); a late keyframe may
    # stretch a segment by 10 %, past that it is cut between keyframes. The
    # EXT-X-TARGETDURATION is its ceiling and never changes. Ask publishers for a
    # keyframe interval that divides it (e.g. 1 s or 2 s for the default).
    target_duration: float = Field(2.0, ge=1.0, le=10.0)
    # LL-HLS part duration in seconds (EXT-X-PART-INF PART-TARGET); parts end on frame
    # boundaries, so with 30 fps video prefer multiples of 1/30 s (0.5 = 15 frames).
    part_target: float = Field(0.5, ge=0.1, le=2.0)
    # Complete segments listed in the media playlist (the sliding window, >= 3 per spec).
    window_segments: int = Field(6, ge=3, le=100)
    # Default for streams that do not choose: emit LL-HLS parts, preload hints and the
    # blocking-reload server control (fMP4 only; TS playlists are always classic HLS).
    low_latency: bool = True
    # Answer a request for the preload-hinted part with chunked transfer as the frames
    # arrive, finished when the part closes (Apple players fetch hinted parts; hls.js
    # does not). While such a request is open, each video frame of the part is written
    # as its own CMAF chunk (moof+mdat); otherwise a part is one moof+mdat, so this
    # costs nothing unused. Off = the hinted request is held and sent once complete.
    chunked_parts: bool = True
    # Main-track decode timestamps that jump back, or forward by more than this many
    # seconds, start a new EXT-X-DISCONTINUITY segment. A smaller forward gap (frames
    # lost upstream, e.g. a slow reader resynchronising at a keyframe) only ends the
    # segment, and the timeline continues without the hole.
    max_timestamp_gap: float = Field(5.0, ge=1.0, le=60.0)
    # Seconds of media the first segment waits, from the first frame, for the
    # configuration of every track the source announced (MPEG-TS PMT, RTMP onMetaData):
    # encoders often send the first audio frame after the first video keyframe, and an
    # init segment opened without it would need a new init and a discontinuity. 0 = no wait.
    track_wait: float = Field(1.0, ge=0.0, le=5.0)

    @model_validator(mode="after")
    def _parts_shorter_than_segments(self) -> HlsSettings:
        if self.part_target * 2 > self.target_duration:
            raise ValueError("hls.part_target must be at most half of hls.target_duration")
        return self


class VodSettings(_Section):
    """HLS VOD of library files: segments cut from the file on demand, cached in memory.

    Segments are cut at keyframes with ``hls.target_duration`` as for live streams; the
    keyframe index of a file is read once and kept while the file is unchanged.
    """

    # Bytes of media segments and init segments kept in memory (least recently used go).
    segment_cache_bytes: int = Field(64 * 1024 * 1024, ge=0, le=64 * 1024**3)
    # Segments kept at most, whatever their size: each is an open memory file (one file
    # descriptor), sent to viewers with sendfile.
    segment_cache_files: int = Field(512, ge=1, le=100_000)
    # Files whose keyframe index and playlists are kept in memory.
    index_cache_items: int = Field(256, ge=1, le=100_000)
    # Worker threads reading files (keyframe scans, segments); more requests wait.
    workers: int = Field(2, ge=1, le=64)
    # Seconds a media item's status and policy are remembered between requests: a
    # player's burst of segment requests costs one database query. A deleted item or a
    # policy change is seen this much later at most.
    lookup_cache_seconds: float = Field(2.0, ge=0, le=60)
    # Seconds a viewer may take no bytes of a cached segment before its connection is
    # closed (the segment is sent from memory, so a stalled reader holds no buffer).
    send_stall_timeout: float = Field(30.0, gt=0, le=600)


class PushSettings(_Section):
    """Multistream pushers: one per destination, each with its own bounded queue."""

    # Seconds to open a destination: TCP/UDP + TLS + RTMP or SRT handshake + publish.
    connect_timeout: float = Field(10.0, gt=0, le=120)
    # Seconds a connected destination may stop accepting data before it counts as dead
    # (its queue meanwhile drops to the next keyframe; the publisher never waits).
    stall_timeout: float = Field(10.0, gt=0, le=300)
    # Seconds the unpublish at the end of a session may take before we hang up.
    close_timeout: float = Field(3.0, gt=0, le=60)
    # Per-destination queue between the bus and the connection (frames and bytes); a
    # destination further behind than this drops to the next keyframe (droppedFrames).
    queue_max_frames: int = Field(1024, ge=64, le=65_536)
    queue_max_bytes: int = Field(8 * 1024 * 1024, ge=256 * 1024, le=256 * 1024 * 1024)
    # Bytes the socket layer may hold before we wait for the destination to read.
    write_buffer_bytes: int = Field(1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    # Seconds between a pusher's sends: what arrived meanwhile goes out in one write
    # (fewer wake-ups and system calls per destination; adds at most this much delay).
    batch_interval: float = Field(0.04, gt=0, le=1.0)
    # Reconnect delays: first retry after retry_initial s, doubling up to retry_max s
    # (less up to 25 % jitter); a connection up for retry_reset_after s starts over.
    retry_initial: float = Field(1.0, gt=0, le=60)
    retry_max: float = Field(60.0, gt=0, le=3600)
    retry_reset_after: float = Field(60.0, gt=0, le=3600)
    # Extra CA certificates (PEM) trusted for rtmps:// destinations besides the system
    # store, e.g. for a private platform with its own CA. Verification is always on.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _retry_order(self) -> PushSettings:
        if self.retry_max < self.retry_initial:
            raise ValueError("push.retry_max must be at least push.retry_initial")
        return self


class PlaybackSettings(_Section):
    """RTMP and SRT players: each is a bus reader with its own bounded queue."""

    # Per-player queue between the bus and the connection (frames and bytes); a player
    # further behind drops to the next keyframe (counted), the publisher never waits.
    queue_max_frames: int = Field(1024, ge=64, le=65_536)
    queue_max_bytes: int = Field(8 * 1024 * 1024, ge=256 * 1024, le=256 * 1024 * 1024)
    # Bytes an RTMP player's socket may hold before we stop sending and let it catch up.
    write_buffer_bytes: int = Field(1024 * 1024, ge=16 * 1024, le=64 * 1024 * 1024)
    # Seconds an RTMP player may stop reading before it is hung up on.
    stall_timeout: float = Field(10.0, gt=0, le=300)
    # Seconds between a player's sends: what arrived meanwhile goes out in one write.
    batch_interval: float = Field(0.04, gt=0, le=1.0)


class WebRtcSettings(_Section):
    """WHIP ingest and WHEP playback (``/whip/live``, ``/whep/{edgeId}``) over aiortc."""

    enabled: bool = True
    # Addresses put into our SDP answers as extra host candidates, beside the local
    # interfaces, for a server behind 1:1 NAT (the same UDP port on the public address).
    public_ips: list[IPvAnyAddress] = Field(default_factory=list, max_length=8)
    # UDP ports for media (each session takes one on each server address); 0 and 0 =
    # any ephemeral port. With a range, a firewall need open only it, and a session
    # finding no free port in it gets 503.
    udp_port_min: int = Field(0, ge=0, le=65535)
    udp_port_max: int = Field(0, ge=0, le=65535)
    # WHIP and WHEP sessions open at once; more get 503.
    max_sessions: int = Field(100, ge=1, le=10_000)
    # Bytes of an SDP offer (or a trickle PATCH) we read; larger is refused with 413.
    max_offer_bytes: int = Field(64 * 1024, ge=4096, le=1024 * 1024)
    # Seconds an SDP offer (or trickle PATCH) body may take to arrive after its head;
    # then 408 and the connection closes (a trickled body would hold its slot forever).
    offer_timeout: float = Field(10.0, gt=0, le=300)
    # Seconds from the answer until ICE and DTLS must be connected; then the session ends.
    connect_timeout: float = Field(10.0, gt=0, le=120)
    # Seconds a WHIP publisher may send no media, or a WHEP viewer no RTCP receiver
    # report, before its session ends (abrupt close: a browser tab killed sends no DTLS
    # close, ICE consent takes ~30 s to notice).
    idle_timeout: float = Field(5.0, gt=0, le=300)
    # Seconds without a keyframe before we ask the publisher for one (PLI): browsers send
    # keyframes only when asked, and HLS segments cut only at keyframes.
    keyframe_interval: float = Field(2.0, ge=0.5, le=30)
    # A WHIP publisher's video packets held behind a gap (waiting for a NACKed
    # retransmission): at most this many, for at most this long; then the gap is given
    # up, its picture dropped and a keyframe asked for.
    reorder_packets: int = Field(256, ge=16, le=4096)
    reorder_wait: float = Field(0.2, gt=0, le=2.0)
    # Bits/s a WHIP publisher is told it may send (REMB): an upper bound; below it the
    # sender's own loss-based control decides.
    publish_max_bitrate: int = Field(10_000_000, ge=100_000, le=100_000_000)
    # Opus frames queued for the AAC transcoder process before new ones are dropped.
    audio_queue_bytes: int = Field(256 * 1024, ge=16 * 1024, le=16 * 1024 * 1024)
    # Per-WHEP-viewer queue of packets waiting to be packetized and sent.
    queue_max_frames: int = Field(256, ge=64, le=65_536)
    queue_max_bytes: int = Field(8 * 1024 * 1024, ge=256 * 1024, le=256 * 1024 * 1024)

    @model_validator(mode="after")
    def _port_range(self) -> WebRtcSettings:
        if (self.udp_port_min == 0) != (self.udp_port_max == 0):
            raise ValueError("set both webrtc.udp_port_min and webrtc.udp_port_max, or neither")
        if self.udp_port_min > self.udp_port_max:
            raise ValueError("webrtc.udp_port_max must be at least webrtc.udp_port_min")
        return self

    @property
    def udp_ports(self) -> range | None:
        """The media port range, or None for ephemeral ports."""
        if self.udp_port_min == 0:
            return None
        return range(self.udp_port_min, self.udp_port_max + 1)


class RecordSettings(_Section):
    """Recording of live sessions to fragmented MP4 (streams with ``recording: true``)."""

    # Seconds of media per fragment: a fragment is written (and survives a crash) once
    # complete, so this is about what a crash or a failed write loses at most.
    fragment_seconds: float = Field(1.0, ge=0.2, le=10.0)
    # Bytes of finished fragments a recording may have waiting for the disk; a disk
    # slower than that makes the recorder's bus reader drop to the next keyframe.
    queue_max_bytes: int = Field(32 * 1024 * 1024, ge=1024 * 1024, le=1024 * 1024 * 1024)
    # No recording starts while the recordings directory has less free space than this.
    min_free_bytes: int = Field(512 * 1024 * 1024, ge=0, le=2**50)
    # Seconds a new recording waits for every announced track's configuration before it
    # starts with the tracks it has.
    track_wait: float = Field(1.0, ge=0.0, le=5.0)
    # Seconds the recorder lets frames gather between wake-ups: one per batch instead
    # of one per frame (what a batch holds must fit the bus reader's bounds).
    batch_interval: float = Field(0.2, ge=0.0, le=1.0)


class Rung(_Section):
    """One step of a quality ladder: encoded at ``height`` (width from the source's
    aspect ratio), ``video_bitrate`` bits/s, at most ``max_fps`` frames per second."""

    name: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_\-]+$")
    height: int = Field(ge=64, le=4320)
    video_bitrate: int = Field(ge=50_000, le=100_000_000)
    max_fps: float = Field(60.0, gt=0, le=240)


def _rung(name: str, height: int, bitrate: int, fps: float) -> Rung:
    return Rung(name=name, height=height, video_bitrate=bitrate, max_fps=fps)


def _default_ladders() -> dict[str, tuple[Rung, ...]]:
    """Common practice (Apple's HLS authoring spec, YouTube/Twitch): bitrates for H.264."""
    r1080 = _rung("1080p", 1080, 5_000_000, 60)
    r720 = _rung("720p", 720, 3_000_000, 60)
    r480 = _rung("480p", 480, 1_200_000, 30)
    r360 = _rung("360p", 360, 800_000, 30)
    return {"standard": (r720, r480, r360), "high": (r1080, r720, r480)}


class TranscodeSettings(_Section):
    """Renditions of streams whose ``quality`` is not ``passthrough``: one worker process
    per transcoded stream decodes the source once and encodes every rung of its ladder."""

    # Rungs per quality, tallest first; a stream gets the rungs no taller than its source.
    ladders: dict[str, tuple[Rung, ...]] = Field(default_factory=_default_ladders)
    # H.264 encoder of the local FFmpeg: libx264, or a hardware one (h264_nvenc,
    # h264_vaapi, h264_qsv); a name the local FFmpeg cannot open stops the start-up.
    encoder: str = Field("libx264", pattern=r"^[a-z0-9_]+$", max_length=32)
    # x264 preset (ignored by hardware encoders): faster presets cost less CPU per rung.
    preset: str = Field("veryfast", pattern=r"^[a-z]+$", max_length=16)
    # AAC bitrate when the source's audio is not AAC and is encoded (once, shared).
    audio_bitrate: int = Field(128_000, ge=32_000, le=512_000)
    # Streams transcoded at once; beyond, a stream stays passthrough (with a warning).
    # Unset = the number of CPU cores (a 720p ladder with libx264 veryfast takes about
    # one core).
    max_streams: int | None = Field(None, ge=0, le=10_000)
    # Seconds a worker may lag behind the source before the stream drops to passthrough.
    max_lag_seconds: float = Field(4.0, ge=1.0, le=60.0)
    # Source frames queued for a worker; a worker further behind loses frames up to the
    # next keyframe (counted as dropped frames of every rung).
    queue_max_frames: int = Field(256, ge=32, le=8192)
    # Restarts of a stream's worker after it died, before the stream stays passthrough.
    max_restarts: int = Field(3, ge=0, le=100)

    @model_validator(mode="after")
    def _ladders_valid(self) -> TranscodeSettings:
        if "passthrough" in self.ladders:
            raise ValueError("transcode.ladders: 'passthrough' is the source only, not a ladder")
        for quality, rungs in self.ladders.items():
            names = [r.name for r in rungs]
            if "source" in names or len(set(names)) != len(names):
                raise ValueError(f"transcode.ladders.{quality}: rung names must be unique")
        return self

    def streams_limit(self) -> int:
        """``max_streams``, or the CPU cores this process may use."""
        if self.max_streams is not None:
            return self.max_streams
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


class PlayoutSettings(_Section):
    """24/7 channels: the default output profile and the playout engine's bounds."""

    # Default output profile of a channel that does not set its own ``profile``.
    width: int = Field(1280, ge=16, le=7680, multiple_of=2)
    height: int = Field(720, ge=16, le=4320, multiple_of=2)
    fps: int = Field(30, ge=1, le=120)
    video_bitrate: int = Field(3_000_000, ge=100_000, le=100_000_000)
    audio_bitrate: int = Field(128_000, ge=32_000, le=512_000)
    # Video encoder (libx264 everywhere; a hardware encoder when the local FFmpeg has it).
    encoder: str = Field("libx264", min_length=1, max_length=32)
    preset: str = Field("veryfast", min_length=1, max_length=32)
    # Seconds of encoded media held ahead of the real-time clock: what absorbs a slow
    # decode, and the most a queue change waits for the next item boundary beyond that.
    lookahead_seconds: float = Field(1.0, ge=0.2, le=10.0)
    # Seconds between saves of the playout position (item, offset, loop count):
    # the most a restart or a crash replays.
    save_interval: float = Field(2.0, ge=0.5, le=60.0)
    # Seconds between looks at the channels' schedules.
    schedule_interval: float = Field(1.0, ge=0.2, le=60.0)
    # Seconds a worker process may take to start, or to answer, before it is killed.
    worker_timeout: float = Field(20.0, ge=1.0, le=300.0)
    # Broken items in a row after which the channel ends instead of trying the next.
    max_failures_in_row: int = Field(10, ge=1, le=1000)
