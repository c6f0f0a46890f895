"""Micro-benchmark of the whole RTMP ingest path in one process, without sockets.

The real ``RtmpIngestConnection`` (sans-IO core + FLV parsing + ``IngestManager`` claim
+ bus publish) gets a fake transport; a client-role ``RtmpConnection`` in memory does
the handshake and publish, then the benchmark sample's pre-chunked passes are fed
with one ``data_received`` per message or per video frame (as a paced encoder's writes
arrive) or in 256 KiB reads (flat out). What is left out is exactly the kernel and the event loop,
so this isolates the Python cost per message; use it to try optimisations quickly,
then confirm with ``python -m bench``.

    python -m bench.ingest_micro [--passes 10] [--reads message|frame|256k] [--profile out.html]

RELAYCAST_NO_EXTENSIONS=1 measures the pure-Python path beside the compiled one
(``media_path`` in the output says which ran).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.media import PrechunkedLoop, SampleSpec, ensure_sample, read_flv
from bench.plane import build_plane
from server import accel
from server.bus import Registry
from server.ingest.rtmp import RtmpIngestConnection
from server.protocols import rtmp

CACHE = Path(__file__).resolve().parent / ".cache"


class FakeTransport:
    """Just enough of ``asyncio.Transport`` for the ingest protocol."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def take(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data


async def connected_ingest() -> tuple[RtmpIngestConnection, rtmp.RtmpConnection, Registry]:
    plane = build_plane()
    registry = plane.registry
    ingest = RtmpIngestConnection(plane.rtmp)
    transport = FakeTransport()
    ingest.connection_made(transport)  # type: ignore[arg-type]
    client = rtmp.RtmpConnection(rtmp.Role.CLIENT)
    client.start("live", "rtmp://127.0.0.1/live", "micro")
    for _ in range(100):
        data = client.data_to_send()
        if data:
            ingest.data_received(data)
        await asyncio.sleep(0)  # the publish decision is a task
        client.receive_data(transport.take(), 0.0)
        if any(isinstance(e, rtmp.PublishStarted) for e in client.events()):
            return ingest, client, registry
    raise RuntimeError("publish did not start")


async def run(passes: int, reads: str, repeats: int = 5) -> dict[str, Any]:
    tags = read_flv(ensure_sample(CACHE, SampleSpec()))
    ingest, client, registry = await connected_ingest()
    grouping = "frame" if reads == "frame" else "message"
    media = PrechunkedLoop(tags, client.stream_id, client.out_chunk_size, grouping)
    ingest.data_received(media.head)
    if reads in ("frame", "message"):
        first = [g.wire for g in media.first]
        steady = [g.wire for g in media.steady]
    else:
        first = media.batches(256 * 1024, steady=False)
        steady = media.batches(256 * 1024)
    feed = ingest.data_received
    for wire in first:
        feed(wire)
    messages = media.messages_per_pass
    cpu = wall = float("inf")
    for _ in range(repeats):  # the best of several: a shared machine only ever adds time
        started_cpu, started = time.process_time(), time.perf_counter()
        for _ in range(passes):
            for wire in steady:
                feed(wire)
        cpu = min(cpu, time.process_time() - started_cpu)
        wall = min(wall, time.perf_counter() - started)
    stream = registry.get("bench-micro")
    frames = stream.stats().frames_published if stream else 0
    total_bytes = media.bytes_per_pass * passes
    return {
        "bench": "ingest_micro",
        "media_path": accel.summary(),
        "reads": reads,
        "passes": passes,
        "repeats": repeats,
        "messages": messages * passes,
        "frames_published": frames,
        "us_per_message": cpu * 1e6 / (messages * passes),
        "mb_per_cpu_s": total_bytes / 1e6 / cpu,
        "cpu_ms_per_stream_s_equiv": cpu * 1000 / (media.period * passes),
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--reads", choices=["message", "frame", "256k"], default="message")
    parser.add_argument("--repeats", type=int, default=5, help="report the best of N")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile here")
    args = parser.parse_args()
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        result = asyncio.run(run(args.passes, args.reads, args.repeats))
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        result = asyncio.run(run(args.passes, args.reads, args.repeats))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
