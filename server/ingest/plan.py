"""Plan enforcement: what a stream's plan allows, checked against what arrives.

Resolution and declared frame rate are checked when the codec configuration
arrives; bitrate and measured frame rate once a second after a settling period, with
headroom, because encoders burst at keyframes and CBR is never exact.
"""

from __future__ import annotations

from server.bus import PlanLimits
from server.ingest.health import IngestMeter
from server.media.frame import CodecConfig, TrackKind

BITRATE_HEADROOM = 1.5
FPS_HEADROOM = 1.1
SETTLE_SECONDS = 5.0


def config_violation(limits: PlanLimits, config: CodecConfig) -> str | None:
    if config.track is not TrackKind.VIDEO:
        return None
    if config.width > limits.max_width or config.height > limits.max_height:
        return (
            f"resolution {config.width}x{config.height} exceeds the plan's "
            f"{limits.max_width}x{limits.max_height}"
        )
    if config.fps and config.fps > limits.max_frame_rate * FPS_HEADROOM:
        return f"frame rate {config.fps:g} exceeds the plan's {limits.max_frame_rate:g}"
    return None


def rate_violation(
    limits: PlanLimits, meter: IngestMeter, connected_for: float, now: float
) -> str | None:
    if connected_for < SETTLE_SECONDS:
        return None
    bitrate = meter.bitrate(now)
    if bitrate > limits.max_bitrate * BITRATE_HEADROOM:
        ceiling = limits.max_bitrate // 1000
        return f"bitrate {bitrate // 1000} kbit/s exceeds the plan's {ceiling} kbit/s"
    fps = meter.fps()
    if fps and fps > limits.max_frame_rate * FPS_HEADROOM:
        return f"frame rate {fps:g} exceeds the plan's {limits.max_frame_rate:g}"
    return None
