"""Micro-benchmark: server-side RTMP parse throughput (no sockets).

Builds a publisher byte stream of ~16 KB video messages chunked at 4096 bytes (plus
~400 byte audio messages in between, like a real 4 Mbit/s stream), then measures:

* ``reader``: ChunkReader alone, fed in 64 KiB reads (typical socket read size);
* ``connection``: a full server-role RtmpConnection after connect/publish were
  accepted, events drained per read (what the ingest adapter does).

Throughput is bytes per second of *process CPU time* (``time.process_time``), so a
busy shared machine slows the run but does not distort the figure much.
Prints one JSON line. Usage: python bench/rtmp_parse_micro.py [seconds_per_case]
"""

from __future__ import annotations

import json
import os
import sys
import time

from server import accel
from server.protocols.rtmp import (
    ConnectRequested,
    PublishRequested,
    Role,
    RtmpConnection,
    chunk,
    messages,
)
from server.protocols.rtmp.chunk import ChunkReader, Message

READ_SIZE = 65536
SMALL_READ = 1448
CHUNK_SIZE = 4096
VIDEO_SIZE = 16 * 1024
AUDIO_SIZE = 400


def build_stream(n_video: int) -> tuple[bytes, int]:
    """Set Chunk Size 4096, then interleaved video/audio messages on stream 1."""
    parts = [
        messages.control_message(
            messages.MessageType.SET_CHUNK_SIZE, messages.set_chunk_size(CHUNK_SIZE), 128
        )
    ]
    video = b"\x27\x01\x00\x00\x00" + os.urandom(VIDEO_SIZE - 5)
    audio = b"\xaf\x01" + os.urandom(AUDIO_SIZE - 2)
    count = 0
    for i in range(n_video):
        ts = i * 33
        parts.append(chunk.encode_message(6, 9, 1, ts, video, CHUNK_SIZE))
        parts.append(chunk.encode_message(4, 8, 1, ts + 10, audio, CHUNK_SIZE))
        count += 2
    return b"".join(parts), count


def reads(stream: bytes, size: int = READ_SIZE) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def bench_reader(pieces: list[bytes], total: int, seconds: float) -> dict[str, float]:
    rounds = 0
    msgs = 0
    start = time.process_time()
    while True:
        reader = ChunkReader(
            max_message_size=16 << 20,
            max_chunk_size=65536,
            max_chunk_streams=64,
            max_partial_bytes=32 << 20,
        )
        out: list[Message] = []
        for piece in pieces:
            reader.feed(piece, out)
            msgs += len(out)
            out.clear()
        rounds += 1
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            break
    return {"MBps": rounds * total / elapsed / 1e6, "msgs_per_s": msgs / elapsed}


def published_server() -> RtmpConnection:
    """A server connection that has accepted connect + publish from our own client."""
    client = RtmpConnection(Role.CLIENT)
    server = RtmpConnection(Role.SERVER)
    client.start("live", "rtmp://127.0.0.1/live", "bench")
    for _ in range(20):
        a, b = client.data_to_send(), server.data_to_send()
        if a:
            server.receive_data(a, 0.0)
        if b:
            client.receive_data(b, 0.0)
        for ev in server.events():
            if isinstance(ev, ConnectRequested):
                server.accept_connect()
            elif isinstance(ev, PublishRequested):
                server.accept_publish(ev.stream_id)
        client.events()
    server.data_to_send()
    return server


def bench_connection(pieces: list[bytes], total: int, seconds: float) -> dict[str, float]:
    rounds = 0
    events = 0
    busy = 0.0
    while busy < seconds:
        server = published_server()
        start = time.process_time()
        for piece in pieces:
            server.receive_data(piece, 1.0)
            events += len(server.events())
            server.data_to_send()
        busy += time.process_time() - start
        rounds += 1
        assert not server.closed
    return {"MBps": rounds * total / busy / 1e6, "msgs_per_s": events / busy}


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    stream, count = build_stream(300)
    pieces = reads(stream)
    reader = bench_reader(pieces, len(stream), seconds)
    conn = bench_connection(pieces, len(stream), seconds)
    # trickling publishers: one TCP segment (1448 bytes) per read is the worst common case
    small = bench_connection(reads(stream, SMALL_READ), len(stream), seconds)
    # a 4 Mbit/s publisher is 0.5 MB/s: how many such publishers one core could parse
    print(
        json.dumps(
            {
                "bench": "rtmp_parse_micro",
                "media_path": accel.summary(),
                "video_msg_bytes": VIDEO_SIZE,
                "audio_msg_bytes": AUDIO_SIZE,
                "chunk_size": CHUNK_SIZE,
                "read_size": READ_SIZE,
                "stream_bytes": len(stream),
                "messages": count,
                "reader_MBps": round(reader["MBps"], 1),
                "reader_msgs_per_s": round(reader["msgs_per_s"]),
                "connection_MBps": round(conn["MBps"], 1),
                "connection_msgs_per_s": round(conn["msgs_per_s"]),
                "connection_1448B_reads_MBps": round(small["MBps"], 1),
                "publishers_4mbit_per_core_1448B_reads": int(small["MBps"] / 0.5),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
