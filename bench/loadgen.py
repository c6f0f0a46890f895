"""Load generator: many RTMP publishers in one process, writing pre-chunked media.

Every publisher is a real :class:`server.push.RtmpPublisher` (same handshake, commands,
flow control as production pushes); the media is a :class:`bench.media.PrechunkedLoop`,
so per write the generator only picks pre-built bytes, waits for their moment and
writes them. Modes:

* ``paced``: one write per video frame (the frame plus the audio before it) at the
  sample's own timing, publishers phase-shifted across one frame interval so that 200
  of them do not all wake at once;
* ``flat``: as fast as the server takes it, ~256 KiB writes, ``drain()`` between.

As a worker process (``python -m bench.loadgen ...``) it is driven over stdin/stdout
with JSON lines, so that the orchestrator can start several workers, start them
together and take measurements inside the steady state::

    -> {"event": "ready", ...}      all publishers connected and publishing
    <- go                            start sending
    <- mark                          -> {"event": "mark", "t": ..., "bytes": ..., ...}
    <- stop                          -> {"event": "done", ...}; the worker exits
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.media import GROUPINGS, PrechunkedLoop, Tag, read_flv
from server.push import RtmpClientError, RtmpPublisher

FLAT_BATCH = 256 * 1024
LATE_MS = 50.0  # a write this late counts as "late" (the server or the generator lags)


@dataclass
class PublisherStats:
    bytes: int = 0
    writes: int = 0
    late_writes: int = 0
    late_max_ms: float = 0.0
    drains: int = 0
    error: str | None = None


@dataclass
class LoadGenerator:
    """N publishers sharing one pre-chunked sample (built once per stream id/chunk size)."""

    urls: list[str]
    tags: list[Tag]
    mode: str = "paced"
    write_buffer_high: int | None = None
    grouping: str = "message"

    publishers: list[RtmpPublisher] = field(default_factory=list)
    stats: list[PublisherStats] = field(default_factory=list)
    _loops: dict[tuple[int, int], PrechunkedLoop] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False
    started_at: float = 0.0

    def prechunked(self, pub: RtmpPublisher) -> PrechunkedLoop:
        key = (pub.stream_id, pub.chunk_size)
        if key not in self._loops:
            self._loops[key] = PrechunkedLoop(self.tags, *key, grouping=self.grouping)
        return self._loops[key]

    async def connect(self, concurrency: int = 16, connect_timeout: float = 30.0) -> None:
        """Connect everyone (a few at a time, like encoders coming up) and send the
        metadata and sequence headers, so that each server has its stream open."""
        gate = asyncio.Semaphore(concurrency)

        async def one(url: str) -> RtmpPublisher:
            async with gate:
                pub = await RtmpPublisher.connect(
                    url, timeout=connect_timeout, write_buffer_high=self.write_buffer_high
                )
                pub.send_prechunked(self.prechunked(pub).head)
                return pub

        self.publishers = list(await asyncio.gather(*(one(url) for url in self.urls)))
        self.stats = [PublisherStats() for _ in self.publishers]

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.started_at = loop.time()
        count = max(1, len(self.publishers))
        for index, pub in enumerate(self.publishers):
            media = self.prechunked(pub)
            if self.mode == "flat":
                coro = self._flat(pub, media, self.stats[index])
            else:
                interval = media.period / max(1, len(media.steady))
                t0 = self.started_at + 0.02 + interval * index / count
                coro = self._paced(pub, media, self.stats[index], t0)
            self._tasks.append(loop.create_task(coro))

    async def _paced(
        self, pub: RtmpPublisher, media: PrechunkedLoop, st: PublisherStats, t0: float
    ) -> None:
        clock = asyncio.get_running_loop().time
        groups, base = media.first, t0
        try:
            while not self._stopping:
                for group in groups:
                    due = base + group.offset
                    delay = due - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        if self._stopping:
                            return
                    late = (clock() - due) * 1000
                    if late > st.late_max_ms:
                        st.late_max_ms = late
                    if late > LATE_MS:
                        st.late_writes += 1
                    pub.send_prechunked(group.wire)
                    st.bytes += len(group.wire)
                    st.writes += 1
                    if not pub.writable:
                        st.drains += 1
                        await pub.drain()
                groups, base = media.steady, base + media.period
        except RtmpClientError as exc:
            st.error = str(exc)

    async def _flat(self, pub: RtmpPublisher, media: PrechunkedLoop, st: PublisherStats) -> None:
        batches = media.batches(FLAT_BATCH, steady=False)
        steady = media.batches(FLAT_BATCH)
        try:
            while not self._stopping:
                for wire in batches:
                    pub.send_prechunked(wire)
                    st.bytes += len(wire)
                    st.writes += 1
                    if pub.writable:
                        await asyncio.sleep(0)  # let stdin commands in
                    else:
                        st.drains += 1
                        await pub.drain()
                    if self._stopping:
                        return
                batches = steady
        except RtmpClientError as exc:
            st.error = str(exc)

    def snapshot(self) -> dict[str, object]:
        """Totals so far (for marks and the final report)."""
        errors = [s.error for s in self.stats if s.error]
        return {
            "t": time.monotonic(),
            "bytes": sum(s.bytes for s in self.stats),
            "writes": sum(s.writes for s in self.stats),
            "late_writes": sum(s.late_writes for s in self.stats),
            "late_max_ms": round(max((s.late_max_ms for s in self.stats), default=0.0), 1),
            "drains": sum(s.drains for s in self.stats),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "cpu_s": _own_cpu(),
        }

    async def stop(self) -> dict[str, object]:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        summary = self.snapshot()
        await asyncio.gather(*(p.close(grace=3.0) for p in self.publishers))
        return summary


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- worker


def _emit(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


class Driven(Protocol):
    """A load generator as the orchestrator drives it (RTMP here, SRT in srt_loadgen)."""

    @property
    def publishers(self) -> Sequence[object]: ...

    async def connect(self, concurrency: int) -> None: ...
    def start(self) -> None: ...
    def snapshot(self) -> dict[str, object]: ...
    async def stop(self) -> dict[str, object]: ...


async def drive(
    gen: Driven,
    connect_concurrency: int,
    max_seconds: float,
    errors: tuple[type[BaseException], ...],
) -> None:
    """Connect, report ready, then obey go / mark / stop from stdin (EOF = stop)."""
    commands = await _stdin_lines()
    started = time.monotonic()
    try:
        await gen.connect(connect_concurrency)
    except errors as exc:
        _emit("error", error=str(exc))
        return
    _emit("ready", publishers=len(gen.publishers), connect_s=round(time.monotonic() - started, 2))
    deadline = time.monotonic() + max_seconds
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = await asyncio.wait_for(commands.readline(), max(0.0, remaining))
        except TimeoutError:
            line = b"stop\n"
        command = line.decode().strip() or "stop"  # EOF: the orchestrator went away
        if command == "go":
            gen.start()
        elif command == "mark":
            _emit("mark", **gen.snapshot())
        elif command == "stop":
            break
    _emit("done", **(await gen.stop()))


async def worker(args: argparse.Namespace, urls: list[str], tags: list[Tag]) -> None:
    gen = LoadGenerator(urls, tags, args.mode, args.write_buffer_high, args.grouping)
    await drive(gen, args.connect_concurrency, args.max_seconds, (RtmpClientError, OSError))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", required=True, help="file with one rtmp:// URL per line")
    parser.add_argument("--sample", required=True, help="FLV sample (bench.media)")
    parser.add_argument("--mode", choices=["paced", "flat"], default="paced")
    parser.add_argument("--grouping", choices=list(GROUPINGS), default="message")
    parser.add_argument("--connect-concurrency", type=int, default=16)
    parser.add_argument("--write-buffer-high", type=int, default=None)
    parser.add_argument(
        "--max-seconds", type=float, default=600, help="hard bound on the run after ready"
    )
    args = parser.parse_args(argv)
    urls = [u for u in Path(args.urls).read_text().split() if u]
    tags = read_flv(Path(args.sample))
    try:
        import uvloop
    except ImportError:
        asyncio.run(worker(args, urls, tags))
    else:
        uvloop.run(worker(args, urls, tags))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
