"""The media families of ``GET /metrics``, built from live snapshots at scrape time.

Nothing here counts anything: every number is read, when Prometheus scrapes, from
the object that the API reads too — ``IngestManager.health`` (the stream health
endpoint), bus stream stats, SRT link stats through ``SrtLinkFigures`` (the health
endpoint's SRT block), the push manager's destination statuses, the HLS service's
counters, the refusal counters, the recorder's totals, the stream states in the
database, the VOD service's request counts. So a graph can never disagree with the
API. Labels: stream and destination ids, protocol, reason, reader kind, HLS resource
kind and status; never keys, remote addresses or ports.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from server.bus import Registry
from server.hls.packager import HlsService
from server.ingest.health import SrtLinkFigures
from server.ingest.manager import IngestManager
from server.ingest.rtmp import RtmpIngestServer
from server.ingest.srt import SrtIngestServer
from server.playback import PlaybackService
from server.playout.channel import ChannelStats
from server.push.status import DestinationStatus, PushState
from server.record.service import RecordService, RecordStats
from server.transcode.service import TranscodeService
from server.vod.service import VodService

STATES = ("idle", "connecting", "live", "ended", "error")


class ChannelFigures(Protocol):
    """What ``server.playout.service.PlayoutService`` offers the metrics layer."""

    def stats(self) -> dict[str, ChannelStats]: ...


class DestinationStatuses(Protocol):
    """What ``server.push.manager.PushManager`` offers the metrics layer."""

    def statuses(self) -> list[tuple[str, str, DestinationStatus]]: ...


class WebRtcSessions(Protocol):
    """What ``server.webrtc.service.WebRtcService`` offers the metrics layer."""

    def counts(self) -> dict[str, int]: ...


@dataclass
class MediaSources:
    """The live objects the collector reads; the composition root fills it.

    ``webhook_results`` is the hook for webhook deliveries: a callable returning
    delivery counts by result (e.g. ``{"delivered": 3, "failed": 1}``), set by
    whoever builds the webhook dispatcher; absent, the family is left out.
    """

    ingest: IngestManager
    registry: Registry
    hls: HlsService
    rtmp: RtmpIngestServer | None = None
    srt: SrtIngestServer | None = None
    push: DestinationStatuses | None = None
    playback: PlaybackService | None = None
    webrtc: WebRtcSessions | None = None
    record: RecordService | None = None
    vod: VodService | None = None
    webhook_results: Callable[[], Mapping[str, int]] | None = None
    transcode: TranscodeService | None = None
    playout: ChannelFigures | None = None
    clock: Callable[[], float] = time.monotonic


@dataclass(eq=False)  # registries key collectors by identity
class SnapshotCollector(Collector):
    """Builds the media families from live snapshots each time Prometheus scrapes."""

    sources: MediaSources
    http_auth_failures: Counter[tuple[str, str]]
    """API and playback auth failures, counted by the request middleware."""
    states: Mapping[str, int] = field(default_factory=dict)

    def collect(self) -> Iterable[Metric]:
        yield self._streams()
        yield from self._connections()
        yield from self._ingest()
        if self.sources.srt is not None:
            yield from self._srt(self.sources.srt)
        yield self._drops()
        if self.sources.push is not None:
            yield from self._destinations(self.sources.push.statuses())
        yield from self._hls()
        if self.sources.playback is not None:
            yield self._viewers(self.sources.playback)
        if self.sources.webrtc is not None:
            yield self._webrtc(self.sources.webrtc)
        if self.sources.playout is not None:
            yield from self._channels(self.sources.playout.stats())
        yield self._auth_failures()
        if self.sources.record is not None:
            yield from self._recordings(self.sources.record.stats())
        if self.sources.vod is not None:
            yield self._vod(self.sources.vod)
        if self.sources.webhook_results is not None:
            yield self._webhooks(self.sources.webhook_results())
        if self.sources.transcode is not None:
            yield from self._renditions(self.sources.transcode)

    def _renditions(self, transcode: TranscodeService) -> Iterator[Metric]:
        """The figures of ``health.renditions``, and the streams left passthrough."""
        labels = ["stream_id", "rendition"]
        bitrate = GaugeMetricFamily(
            "relaycast_rendition_bitrate_bits_per_second",
            "Video bitrate of a rendition over the last 4 s.",
            labels=labels,
        )
        fps = GaugeMetricFamily(
            "relaycast_rendition_frames_per_second", "Measured frame rate.", labels=labels
        )
        lag = GaugeMetricFamily(
            "relaycast_rendition_lag_seconds", "How far behind the source.", labels=labels
        )
        dropped = CounterMetricFamily(
            "relaycast_rendition_dropped_frames",
            "Source frames the transcoder lost while behind.",
            labels=labels,
        )
        for stream_id in transcode.transcoders():
            for r in transcode.health(stream_id).renditions:
                bitrate.add_metric([stream_id, r.name], r.bitrate)
                fps.add_metric([stream_id, r.name], r.fps)
                lag.add_metric([stream_id, r.name], r.lag_ms / 1000)
                dropped.add_metric([stream_id, r.name], r.dropped_frames)
        fallbacks = CounterMetricFamily(
            "relaycast_transcode_fallbacks",
            "Sessions left passthrough: no capacity, or the encoder failed or fell behind.",
            labels=["reason"],
        )
        for reason in ("capacity", "failure"):
            fallbacks.add_metric([reason], transcode.fallbacks[reason])
        yield from (bitrate, fps, lag, dropped, fallbacks)

    def _streams(self) -> Metric:
        family = GaugeMetricFamily(
            "relaycast_streams", "Live streams by state (as the API shows them).", labels=["state"]
        )
        for state in STATES:
            family.add_metric([state], self.states.get(state, 0))
        return family

    def _connections(self) -> Iterator[Metric]:
        ingest = self.sources.ingest
        publishers: Counter[str] = Counter()
        for stream_id in ingest.publishing():
            health = ingest.health(stream_id)
            if health is not None:
                publishers[health.protocol] += 1
        family = GaugeMetricFamily(
            "relaycast_ingest_publishers",
            "Connected publishers (authenticated encoders) by protocol.",
            labels=["protocol"],
        )
        for protocol, count in sorted(publishers.items()):
            family.add_metric([protocol], count)
        yield family
        rtmp, srt = self.sources.rtmp, self.sources.srt
        family = GaugeMetricFamily(
            "relaycast_ingest_connections",
            "Open ingest connections (authenticated or not) by protocol.",
            labels=["protocol"],
        )
        if rtmp is not None:
            open_ = Counter(c.protocol for c in list(rtmp.connections))
            for protocol in ("rtmp", "rtmps"):
                family.add_metric([protocol], open_.get(protocol, 0))
        if srt is not None:
            family.add_metric(["srt"], len(srt.connections))
        yield family
        if rtmp is None:
            return
        counters = rtmp.counters
        yield CounterMetricFamily(
            "relaycast_rtmp_connections_accepted",
            "RTMP(S) connections accepted.",
            value=counters.accepted,
        )
        yield CounterMetricFamily(
            "relaycast_rtmp_connections_rejected",
            "RTMP(S) connections refused at accept because max_connections was reached.",
            value=counters.over_limit,
        )
        yield CounterMetricFamily(
            "relaycast_rtmp_connection_failures",
            "RTMP(S) connections closed for a protocol violation, timeout or bad media.",
            value=sum(counters.failures.values()),
        )
        spread = rtmp.spread
        if spread is not None:  # --workers: how much evening out the kernel's spread took
            handed = CounterMetricFamily(
                "relaycast_rtmp_connections_handed",
                "RTMP(S) connections this worker passed to a less loaded sibling "
                "(--workers) or received from one, before reading a byte.",
                labels=["direction", "listener"],
            )
            for direction, counts in (("passed", spread.passed), ("received", spread.received)):
                for listener in ("rtmp", "rtmps"):
                    handed.add_metric([direction, listener], counts[listener])
            yield handed
        yield CounterMetricFamily(
            "relaycast_rtmp_refusals_throttled",
            "Refusals of a repeated unknown stream key answered late (back-off against "
            "key guessing, per address).",
            value=counters.throttled,
        )

    def _ingest(self) -> Iterator[Metric]:
        ingest, registry = self.sources.ingest, self.sources.registry
        labels = ["stream_id"]
        bytes_in = CounterMetricFamily(
            "relaycast_ingest_bytes", "Bytes received in the current session.", labels=labels
        )
        frames = CounterMetricFamily(
            "relaycast_ingest_frames", "Frames published to the bus this session.", labels=labels
        )
        bitrate = GaugeMetricFamily(
            "relaycast_ingest_bitrate_bits_per_second",
            "Ingest bitrate over the last 5 s.",
            labels=labels,
        )
        fps = GaugeMetricFamily(
            "relaycast_ingest_video_frames_per_second", "Measured video frame rate.", labels=labels
        )
        keyint = GaugeMetricFamily(
            "relaycast_ingest_keyframe_interval_seconds",
            "Time between the last two video keyframes.",
            labels=labels,
        )
        for stream_id in ingest.publishing():
            health = ingest.health(stream_id)
            if health is None:
                continue
            bytes_in.add_metric([stream_id], health.bytes_in)
            bitrate.add_metric([stream_id], health.bitrate)
            stream = registry.get(stream_id)
            if stream is not None:
                frames.add_metric([stream_id], stream.stats().frames_published)
            video = health.video
            if video is not None:
                if video.fps is not None:
                    fps.add_metric([stream_id], video.fps)
                if video.keyframe_interval is not None:
                    keyint.add_metric([stream_id], video.keyframe_interval)
        yield from (bytes_in, frames, bitrate, fps, keyint)

    def _srt(self, server: SrtIngestServer) -> Iterator[Metric]:
        """Link figures per stream from the core's snapshot (what the health API shows)."""
        labels = ["stream_id"]
        rtt = GaugeMetricFamily(
            "relaycast_srt_rtt_seconds", "Smoothed SRT round-trip time.", labels=labels
        )
        received = CounterMetricFamily(
            "relaycast_srt_packets_received", "SRT data packets received.", labels=labels
        )
        lost = CounterMetricFamily(
            "relaycast_srt_packets_lost", "SRT packets detected missing (NAK'd).", labels=labels
        )
        retransmitted = CounterMetricFamily(
            "relaycast_srt_packets_retransmitted",
            "Retransmitted SRT packets received.",
            labels=labels,
        )
        dropped = CounterMetricFamily(
            "relaycast_srt_packets_dropped",
            "SRT packets never delivered (too late, or given up by the sender).",
            labels=labels,
        )
        loss = GaugeMetricFamily(
            "relaycast_srt_loss_ratio",
            "Share of first transmissions that never arrived (the health API's lossRate).",
            labels=labels,
        )
        for connection in list(server.connections.values()):
            claim, stats = connection.claim, connection.stats()
            if claim is None or not claim.current or stats is None:
                continue
            sid, link = [claim.live.grant.stream_id], SrtLinkFigures.of(stats)
            rtt.add_metric(sid, link.rtt_ms / 1000)
            received.add_metric(sid, link.packets_received)
            lost.add_metric(sid, link.packets_lost)
            retransmitted.add_metric(sid, link.packets_retransmitted)
            dropped.add_metric(sid, link.packets_dropped)
            loss.add_metric(sid, link.loss_rate)
        yield from (rtt, received, lost, retransmitted, dropped, loss)
        counters = server.counters
        yield CounterMetricFamily(
            "relaycast_srt_connections_accepted",
            "SRT handshakes accepted.",
            value=counters.accepted,
        )
        rejected = CounterMetricFamily(
            "relaycast_srt_connections_rejected",
            "SRT handshakes rejected, by SRT rejection code (1000+ = server-defined).",
            labels=["code"],
        )
        for code, count in sorted(counters.rejected.items()):
            rejected.add_metric([str(int(code))], count)
        yield rejected

    def _destinations(self, statuses: list[tuple[str, str, DestinationStatus]]) -> Iterator[Metric]:
        """Pushes of live streams (the destination status the API shows)."""
        states = GaugeMetricFamily(
            "relaycast_destinations",
            "Push destinations of live streams by state.",
            labels=["state"],
        )
        by_state = Counter(str(status.state) for _, _, status in statuses)
        for state in PushState:
            states.add_metric([str(state)], by_state.get(str(state), 0))
        yield states
        labels = ["stream_id", "destination_id"]
        sent = CounterMetricFamily(
            "relaycast_destination_bytes_sent",
            "Bytes pushed to a destination this session.",
            labels=labels,
        )
        reconnects = CounterMetricFamily(
            "relaycast_destination_reconnects",
            "Reconnection attempts to a destination this session.",
            labels=labels,
        )
        dropped = CounterMetricFamily(
            "relaycast_destination_frames_dropped",
            "Frames a slow destination lost this session.",
            labels=labels,
        )
        for stream_id, destination_id, status in statuses:
            ids = [stream_id, destination_id]
            sent.add_metric(ids, status.bytes_sent)
            reconnects.add_metric(ids, status.reconnects)
            dropped.add_metric(ids, status.dropped_frames)
        yield from (sent, reconnects, dropped)

    def _drops(self) -> Metric:
        family = CounterMetricFamily(
            "relaycast_bus_frames_dropped",
            "Frames the bus dropped for a slow reader, this session, by reader kind.",
            labels=["stream_id", "reader_kind"],
        )
        for stream in self.sources.registry.streams():
            dropped: Counter[str] = Counter()
            for reader in stream.stats().readers:
                dropped[reader.kind or "other"] += reader.dropped_frames
            for kind, count in sorted(dropped.items()):
                family.add_metric([stream.stream_id, kind], count)
        return family

    def _hls(self) -> Iterator[Metric]:
        stats = self.sources.hls.stats
        requests = CounterMetricFamily(
            "relaycast_hls_requests",
            "HLS playback requests by resource kind and HTTP status.",
            labels=["kind", "status"],
        )
        for (kind, status), count in sorted(stats.requests.items()):
            requests.add_metric([kind, str(status)], count)
        yield requests
        wait = HistogramMetricFamily(
            "relaycast_hls_blocking_reload_wait_seconds",
            "How long LL-HLS blocking playlist reloads were held before the answer.",
        )
        wait.add_metric([], stats.blocking_wait.cumulative(), stats.blocking_wait.total)
        yield wait
        viewers = GaugeMetricFamily(
            "relaycast_hls_viewers",
            "Concurrent HLS viewers (clients that fetched a playlist in the last 30 s).",
            labels=["stream_id"],
        )
        now = self.sources.clock()
        for packager in self.sources.hls.packagers():
            viewers.add_metric([packager.info.stream_id], packager.viewers.active(now))
        yield viewers

    def _viewers(self, playback: PlaybackService) -> Metric:
        family = GaugeMetricFamily(
            "relaycast_viewers",
            "Concurrent viewers of a live stream by protocol (hls, rtmp, srt, webrtc); the plan's "
            "maxClients counts them together.",
            labels=["stream_id", "protocol"],
        )
        for grant, stats in playback.snapshots():
            counts = (
                ("hls", stats.hls),
                ("rtmp", stats.rtmp),
                ("srt", stats.srt),
                ("webrtc", stats.webrtc),
            )
            for protocol, count in counts:
                family.add_metric([grant.stream_id, protocol], count)
        return family

    def _webrtc(self, webrtc: WebRtcSessions) -> Metric:
        """Open sessions, so that one a peer left without a goodbye shows until it
        times out (and a leak shows as a count that never returns to 0)."""
        family = GaugeMetricFamily(
            "relaycast_webrtc_sessions",
            "Open WebRTC sessions by kind (whip: publishers, whep: viewers), connected or not.",
            labels=["kind"],
        )
        for kind, count in sorted(webrtc.counts().items()):
            family.add_metric([kind], count)
        return family

    def _channels(self, stats: Mapping[str, ChannelStats]) -> Iterator[Metric]:
        """Per playing channel, the playout's own counters (since it last started)."""
        labels = ["stream_id"]
        counters = {
            "items_started": "Queue items put on air.",
            "items_failed": "Queue items skipped because they could not be played.",
            "skips": "Items ended early by a skip or by removing the item on air.",
            "takeovers": "Times an encoder took the channel over.",
            "underruns": "Times the encoded look-ahead ran dry and the clock was re-anchored.",
        }
        for name, text in counters.items():
            family = CounterMetricFamily(f"relaycast_channel_{name}", text, labels=labels)
            for stream_id, figures in stats.items():
                family.add_metric([stream_id], getattr(figures, name))
            yield family
        buffered = GaugeMetricFamily(
            "relaycast_channel_buffered_seconds",
            "Encoded media held ahead of real time (bounded by playout.lookahead_seconds).",
            labels=labels,
        )
        for stream_id, figures in stats.items():
            buffered.add_metric([stream_id], figures.buffered_seconds)
        yield buffered

    def _recordings(self, stats: RecordStats) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "relaycast_recordings_active", "Sessions being recorded now.", value=stats.active
        )
        for name, text, count in (
            ("bytes_written", "Bytes the recorder wrote to disk.", stats.bytes_written),
            (
                "write_errors",
                "Recordings stopped by a failed write (disk full, I/O error).",
                stats.write_errors,
            ),
            (
                "frames_dropped",
                "Frames the recorder lost to a slow disk (dropped to the next keyframe).",
                stats.dropped_frames,
            ),
        ):
            yield CounterMetricFamily(f"relaycast_recording_{name}", text, value=count)

    def _vod(self, vod: VodService) -> Metric:
        family = CounterMetricFamily(
            "relaycast_vod_requests",
            "VOD playback requests (master, media, init, segment, mp4) by HTTP status.",
            labels=["kind", "status"],
        )
        for (kind, status), count in sorted(vod.requests.items()):
            family.add_metric([kind, str(status)], count)
        return family

    def _auth_failures(self) -> Metric:
        family = CounterMetricFamily(
            "relaycast_auth_failures",
            "Refused publishes (by ingest protocol and refusal reason) and API/playback "
            "authentication failures (protocol http, hls or vod).",
            labels=["protocol", "reason"],
        )
        counts: Counter[tuple[str, str]] = Counter(self.http_auth_failures)
        for key, count in self.sources.ingest.refusals.counts.items():
            protocol, _, reason = key.partition(":")
            counts[(protocol, reason)] += count
        for (protocol, reason), count in sorted(counts.items()):
            family.add_metric([protocol, reason], count)
        return family

    def _webhooks(self, results: Mapping[str, int]) -> Metric:
        family = CounterMetricFamily(
            "relaycast_webhook_deliveries",
            "Webhook delivery attempts by result.",
            labels=["result"],
        )
        for result, count in sorted(results.items()):
            family.add_metric([result], count)
        return family
