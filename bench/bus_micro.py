"""Micro-benchmark of ``Stream.publish``: CPU cost per frame by number of readers.

Prints one JSON line, e.g. ``{"bench": "bus_micro", "publish_ns_per_frame": {"0": ..,
"1": .., "50": ..}, "publish_ns_per_frame_stalled": {...}}``. "Keeping up" readers are
drained between batches outside the timed region; "stalled" readers are never read, so
every publish goes through the overflow/resync path instead.

Run: .venv/bin/python bench/bus_micro.py [--frames N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.bus import Stream
from server.media.frame import CodecConfig, Frame, TrackKind

BATCH = 100


def _frames(count: int) -> list[Frame]:
    """30 fps video with a keyframe every 60 frames, interleaved with ~47 fps audio."""
    out: list[Frame] = []
    for n in range(count):
        if n % 5 in (1, 3):
            out.append(Frame(TrackKind.AUDIO, "aac", n * 1800, n * 1800, True, bytes(300)))
        else:
            key = n % 150 == 0
            size = 40_000 if key else 8_000
            out.append(Frame(TrackKind.VIDEO, "h264", n * 1800, n * 1800, key, bytes(size)))
    return out


def _stream() -> Stream:
    stream = Stream("bench")
    stream.set_config(CodecConfig(TrackKind.VIDEO, "h264", b"\x01\x64\x00\x1f"))
    stream.set_config(CodecConfig(TrackKind.AUDIO, "aac", b"\x12\x10"))
    return stream


def measure(readers: int, frames: list[Frame], *, stalled: bool) -> float:
    """Mean ns per publish() over ``frames``."""
    stream = _stream()
    attached = [stream.reader(f"r{i}", "bench", max_frames=512) for i in range(readers)]
    for reader in attached:
        while reader.next_nowait() is not None:
            pass
    publish = stream.publish
    elapsed = 0
    for start in range(0, len(frames), BATCH):
        batch = frames[start : start + BATCH]
        t0 = time.perf_counter_ns()
        for frame in batch:
            publish(frame)
        elapsed += time.perf_counter_ns() - t0
        if not stalled:
            for reader in attached:
                while reader.next_nowait() is not None:
                    pass
    return elapsed / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30_000)
    args = parser.parse_args()
    frames = _frames(args.frames)
    result: dict[str, object] = {"bench": "bus_micro", "frames": args.frames}
    for label, stalled in (("publish_ns_per_frame", False), ("publish_ns_per_frame_stalled", True)):
        per: dict[str, float] = {}
        for readers in (0, 1, 50):
            runs = [measure(readers, frames, stalled=stalled) for _ in range(3)]
            per[str(readers)] = round(min(runs), 1)
        result[label] = per
    result["python"] = platform.python_version()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
