"""Small frame/config factories for the bus tests."""

from __future__ import annotations

from server.bus import BusItem, Reader
from server.media.frame import CodecConfig, Frame, TrackKind

VIDEO_CONFIG = CodecConfig(TrackKind.VIDEO, "h264", b"\x01\x64\x00\x1f", width=1280, height=720)
VIDEO_CONFIG_2 = CodecConfig(TrackKind.VIDEO, "h264", b"\x01\x64\x00\x28", width=1920, height=1080)
AUDIO_CONFIG = CodecConfig(TrackKind.AUDIO, "aac", b"\x12\x10", sample_rate=44100, channels=2)


def video(n: int, key: bool = False, size: int = 100) -> Frame:
    return Frame(
        TrackKind.VIDEO, "h264", n * 3000, n * 3000, key, n.to_bytes(4, "big") * (size // 4)
    )


def audio(n: int, size: int = 12) -> Frame:
    return Frame(
        TrackKind.AUDIO, "aac", n * 1920, n * 1920, True, n.to_bytes(4, "big") * (size // 4)
    )


def drain(reader: Reader) -> list[BusItem]:
    out: list[BusItem] = []
    while (item := reader.next_nowait()) is not None:
        out.append(item)
        if reader.closed:
            break
    return out
