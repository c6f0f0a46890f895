"""Named bounds and defaults for SRT connections and listeners (architecture
principle 3: bounded everything).

All durations are seconds (``now`` everywhere is seconds on any monotonic origin);
the protocol itself works in microseconds internally. Defaults are libsrt 1.5.1's
(brief 1.3-1.5 and section 8) so that peers see what they expect.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PAYLOAD = 1456  # 1500 - 28 (IP+UDP) - 16 (SRT header)
LIVE_PAYLOAD = 1316  # 7 x 188 bytes of MPEG-TS, libsrt's live default


@dataclass(frozen=True, slots=True)
class SrtLimits:
    """Limits and defaults for one listener and the connections it creates (or for
    one caller connection).

    Attributes:
        latency_ms: our receive latency (TSBPD delay); negotiated as the max of both
            sides' wishes. libsrt's default is 120 ms.
        peer_latency_ms: the smallest receive latency we ask the peer to use for data
            *we* send (``None`` = same as ``latency_ms``, like ``SRTO_LATENCY``).
        tsbpd_delivery: True = deliver each packet at its play time (TSBPD); False =
            deliver contiguous packets at once and let only holes wait, until the
            play time of the first packet after the hole or, if later, two NAK
            periods (at most the latency) after the hole was found. Brief 1.5's
            ingest simplification: lower latency, fewer wake-ups, identical interop.
        mtu: largest datagram we send or accept (IP+UDP included, like libsrt's MSS).
        flow_window: receive buffer in packets; also the window announced in the
            handshake. Data more than this far ahead of delivery is dropped.
        send_buffer: packets kept for retransmission before the oldest is forgotten.
        syn_interval: the 10 ms ACK timer.
        light_ack_packets: a light ACK goes out after this many packets inside one
            ACK interval (libsrt's SELF_CLOCK_INTERVAL).
        min_nak_interval: floor of the periodic NAK interval ((RTT + 4 RTTVar) / 2).
        keepalive_interval: send a keepalive after this long without sending.
        peer_idle_timeout: declare the peer dead after this long without hearing it.
        connect_timeout: caller: give up connecting after this long.
        handshake_resend: caller: re-send induction/conclusion this often.
        pending_timeout: listener: how long the application may take to answer a
            ``ConnectionRequest`` (the caller gives up after its own connect timeout).
        max_pending_handshakes: listener: undecided conclusions held at once; more
            are rejected with BACKLOG (1005).
        response_cache_size / response_cache_ttl: listener: rejections remembered so
            that repeated conclusions get the identical answer.
        max_streamid_bytes: longest stream ID accepted (libsrt: 512).
        advertised_key_length: listener: key length (bytes) announced in the
            induction response; 0 = "no preference" (the caller uses its own).
        max_bandwidth: sender pacing rate in bytes/s; 0 = automatic (input rate
            + 25 %, as libsrt does with ``SRTO_MAXBW`` unset).
        min_pacing_rate: floor of the automatic pacing rate, bytes/s.
        pacing_burst: seconds of sending rate that may leave back to back.
        drop_threshold_floor: sender: packets older than max(peer latency, this)
            + 20 ms are dropped from the send buffer (libsrt: 1 s).
        km_refresh_rate / km_preannounce: caller sender: switch to a fresh key every
            this many packets, announcing it this many packets ahead (libsrt:
            2**24 and 4096; 0 disables rotation).
        km_resend_interval / km_max_resends: caller sender: re-send an
            unanswered key-material refresh.
    """

    latency_ms: int = 120
    peer_latency_ms: int | None = None
    tsbpd_delivery: bool = True
    mtu: int = 1500
    flow_window: int = 8192
    send_buffer: int = 8192
    syn_interval: float = 0.010
    light_ack_packets: int = 64
    min_nak_interval: float = 0.020
    keepalive_interval: float = 1.0
    peer_idle_timeout: float = 5.0
    connect_timeout: float = 3.0
    handshake_resend: float = 0.250
    pending_timeout: float = 5.0
    max_pending_handshakes: int = 256
    response_cache_size: int = 1024
    response_cache_ttl: float = 10.0
    max_streamid_bytes: int = 512
    advertised_key_length: int = 0
    max_bandwidth: int = 0
    min_pacing_rate: int = 125_000
    pacing_burst: float = 0.010
    drop_threshold_floor: float = 1.0
    km_refresh_rate: int = 1 << 24
    km_preannounce: int = 4096
    km_resend_interval: float = 0.5
    km_max_resends: int = 10

    def __post_init__(self) -> None:
        """Reject settings that would make the protocol itself invalid."""
        for name in ("latency_ms",):
            if not 0 <= getattr(self, name) <= 0xFFFF:
                raise ValueError(f"{name} must fit in 16 bits (milliseconds)")
        if self.peer_latency_ms is not None and not 0 <= self.peer_latency_ms <= 0xFFFF:
            raise ValueError("peer_latency_ms must fit in 16 bits (milliseconds)")
        if not 76 <= self.mtu <= 65535:
            raise ValueError("mtu must be between 76 and 65535")
        if self.flow_window < 32 or self.send_buffer < 32:
            raise ValueError("flow_window and send_buffer must be at least 32 packets")
        for name in (
            "syn_interval",
            "min_nak_interval",
            "keepalive_interval",
            "peer_idle_timeout",
            "connect_timeout",
            "handshake_resend",
            "pending_timeout",
            "response_cache_ttl",
            "pacing_burst",
            "km_resend_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.advertised_key_length not in (0, 16, 24, 32):
            raise ValueError("advertised_key_length must be 0, 16, 24 or 32")
        if self.km_refresh_rate and not 0 < self.km_preannounce < self.km_refresh_rate // 2:
            raise ValueError("km_preannounce must be positive and below km_refresh_rate / 2")
        for name in (
            "light_ack_packets",
            "max_pending_handshakes",
            "response_cache_size",
            "max_streamid_bytes",
            "min_pacing_rate",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_bandwidth < 0 or self.km_max_resends < 0 or self.drop_threshold_floor < 0:
            raise ValueError("max_bandwidth, km_max_resends, drop_threshold_floor >= 0")

    @property
    def max_payload(self) -> int:
        """Largest data payload that fits the MTU (1456 at MTU 1500)."""
        return self.mtu - 44

    @property
    def effective_peer_latency_ms(self) -> int:
        return self.latency_ms if self.peer_latency_ms is None else self.peer_latency_ms
