"""Micro-benchmark: CPU cost of the MPEG-TS demuxer per 188-byte packet (SRT ingest).

Input: 10 s of 720p30 H.264 at 4 Mbit/s + AAC, muxed by ffmpeg (so PCR, adaptation
fields and PES layout are an encoder's, not ours), fed to ``TsDemuxer`` as

* ``*_1316``: one 1316-byte SRT payload per call (what a per-datagram adapter does);
* ``*_batch``: ``--batch`` payloads per call (what ``server.ingest.srt`` does: it
  gathers payloads for up to 10 ms; at 4 Mbit/s that is about 4 of them).

``scan_*`` is the reference in the same run: the demuxer's packet-by-packet loop
(``TsDemuxer._scan``), the only path before the run-based one; ``feed_*`` is the
public ``feed``. Figures are µs of process CPU per TS packet, best of ``--repeat``
rounds, with the ratio feed/scan. Prints one JSON line.

Run: .venv/bin/python bench/ts_demux_micro.py [--batch N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.media.mpegts import TsDemuxer

PAYLOAD = 1316


def encoded_ts(seconds: int) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is needed to make the input")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "in.ts"
        subprocess.run(
            [
                ffmpeg, "-hide_banner", "-loglevel", "error",
                "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
                "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
                "-b:v", "4M", "-maxrate", "4M", "-bufsize", "2M", "-g", "60",
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", str(out),
            ],
            check=True,
            timeout=300,
        )  # fmt: skip
        return out.read_bytes()


def per_packet(chunks: list[bytes], packets: int, use_scan: bool) -> Callable[[], float]:
    def run() -> float:
        demuxer = TsDemuxer()
        feed = demuxer._scan if use_scan else demuxer.feed
        start = time.process_time()
        frames = 0
        for chunk in chunks:
            frames += len(feed(chunk))
        elapsed = time.process_time() - start
        assert frames > 0 and demuxer.stats.packets == packets
        return elapsed / packets * 1e6

    return run


def best(fn: Callable[[], float], rounds: int) -> float:
    return round(min(fn() for _ in range(rounds)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    data = encoded_ts(args.seconds)
    packets = len(data) // 188
    data = data[: packets * 188]
    single = [data[i : i + PAYLOAD] for i in range(0, len(data), PAYLOAD)]
    size = PAYLOAD * args.batch
    batched = [data[i : i + size] for i in range(0, len(data), size)]
    figures = {
        "scan_1316": best(per_packet(single, packets, True), args.repeat),
        "feed_1316": best(per_packet(single, packets, False), args.repeat),
        "scan_batch": best(per_packet(batched, packets, True), args.repeat),
        "feed_batch": best(per_packet(batched, packets, False), args.repeat),
    }
    result = {
        "bench": "ts_demux_micro",
        "packets": packets,
        "stream_mbps": round(len(data) * 8 / args.seconds / 1e6, 2),
        "batch_payloads": args.batch,
        "us_per_packet": figures,
        "ratio_1316": round(figures["feed_1316"] / figures["scan_1316"], 3),
        "ratio_batch": round(figures["feed_batch"] / figures["scan_batch"], 3),
        "ratio_adapter_vs_reference": round(figures["feed_batch"] / figures["scan_1316"], 3),
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
