"""SRT load generator: many :class:`server.push.SrtPublisher` callers in one process.

The SRT counterpart of :mod:`bench.loadgen` (same JSON-line protocol on stdin/stdout,
so :class:`bench.scenarios.Workers` drives either): every publisher is the production
caller (handshake, encryption, pacing, ACK/NAK handling, retransmission), and the
media is the benchmark sample as MPEG-TS, muxed once per pass by :class:`TsLoop` and
shared by all publishers of the worker -- per write a publisher only cuts the shared
bytes into 1316-byte payloads. Each pass is muxed with its own time offset (and one
muxer, so continuity counters run on), so the receiver's timestamps keep increasing
over a run of any length. Only ``paced`` mode exists: SRT live has no flow control to
saturate, the sender paces at the input rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgen import LATE_MS, PublisherStats, _own_cpu, drive
from bench.media import Sample, read_flv, sample_frames
from server.media.frame import TIMEBASE, TrackKind
from server.media.mpegts import TsMuxer
from server.push import SrtClientError, SrtPublisher


@dataclass(frozen=True, slots=True)
class TsGroup:
    """The TS bytes of one frame, due ``offset`` seconds into its pass."""

    offset: float
    wire: bytes


class TsLoop:
    """The sample as MPEG-TS, one pass at a time; pass ``k`` plays at ``k * period``."""

    def __init__(self, sample: Sample) -> None:
        frames = sorted(sample.frames, key=lambda f: f.dts)
        video = [f.dts for f in frames if f.track is TrackKind.VIDEO]
        self._base = frames[0].dts
        step = (video[-1] - video[0]) // max(1, len(video) - 1)
        self.period_ticks = video[-1] - self._base + step
        self.period = self.period_ticks / TIMEBASE
        self._frames = [f for f in frames if f.dts - self._base < self.period_ticks]
        self._muxer = TsMuxer([sample.video, sample.audio])
        self._passes: dict[int, list[TsGroup]] = {}
        self.bytes_per_pass = sum(len(g.wire) for g in self.groups(0))
        self.bitrate = self.bytes_per_pass * 8 / self.period

    def groups(self, index: int) -> list[TsGroup]:
        """Pass ``index``, muxed on first use; passes are requested in order, so only
        the current and the previous one are kept."""
        groups = self._passes.get(index)
        if groups is None:
            shift = index * self.period_ticks - self._base
            mux = self._muxer.mux
            groups = [
                TsGroup((f.dts - self._base) / TIMEBASE, mux(f, shift))  # PAT/PMT when due
                for f in self._frames
            ]
            self._passes[index] = groups
            self._passes.pop(index - 2, None)
        return groups


@dataclass
class SrtLoadGenerator:
    urls: list[str]
    media: TsLoop
    publishers: list[SrtPublisher] = field(default_factory=list)
    stats: list[PublisherStats] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    async def connect(self, concurrency: int = 16, connect_timeout: float = 10.0) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(url: str) -> SrtPublisher:
            async with gate:
                return await SrtPublisher.connect(url, timeout=connect_timeout)

        self.publishers = list(await asyncio.gather(*(one(url) for url in self.urls)))
        self.stats = [PublisherStats() for _ in self.publishers]

    def start(self) -> None:
        """Publishers phase-shifted across one frame interval (they would otherwise all
        wake at once)."""
        loop = asyncio.get_running_loop()
        count = max(1, len(self.publishers))
        interval = self.media.period / max(1, len(self.media.groups(0)))
        t0 = loop.time() + 0.02
        for index, pub in enumerate(self.publishers):
            start = t0 + interval * index / count
            self._tasks.append(loop.create_task(self._paced(pub, self.stats[index], start)))

    async def _paced(self, pub: SrtPublisher, st: PublisherStats, t0: float) -> None:
        clock = asyncio.get_running_loop().time
        index = 0
        try:
            while not self._stopping:
                base = t0 + index * self.media.period
                for group in self.media.groups(index):
                    due = base + group.offset
                    delay = due - clock()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        if self._stopping:
                            return
                    late = (clock() - due) * 1000
                    st.late_max_ms = max(st.late_max_ms, late)
                    if late > LATE_MS:
                        st.late_writes += 1
                    pub.send_ts(group.wire)
                    st.bytes += len(group.wire)
                    st.writes += 1
                    if not pub.writable:
                        st.drains += 1
                        await pub.drain()
                index += 1
        except SrtClientError as exc:
            st.error = str(exc)

    def snapshot(self) -> dict[str, object]:
        errors = [s.error for s in self.stats if s.error]
        link = [p.stats() for p in self.publishers]
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
            "packets_sent": sum(s.packets_sent for s in link),
            "packets_retransmitted": sum(s.packets_retransmitted for s in link),
            "packets_send_dropped": sum(s.packets_send_dropped for s in link),
        }

    async def stop(self) -> dict[str, object]:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        summary = self.snapshot()
        await asyncio.gather(*(p.close(grace=2.0) for p in self.publishers))
        return summary


async def worker(args: argparse.Namespace, urls: list[str], media: TsLoop) -> None:
    gen = SrtLoadGenerator(urls, media)
    await drive(gen, args.connect_concurrency, args.max_seconds, (SrtClientError, OSError))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", required=True, help="file with one srt:// URL per line")
    parser.add_argument("--sample", required=True, help="FLV sample (bench.media)")
    parser.add_argument("--mode", choices=["paced"], default="paced")
    parser.add_argument("--connect-concurrency", type=int, default=16)
    parser.add_argument(
        "--max-seconds", type=float, default=600, help="hard bound on the run after ready"
    )
    args = parser.parse_args(argv)
    urls = [u for u in Path(args.urls).read_text().splitlines() if u.strip()]
    media = TsLoop(sample_frames(read_flv(Path(args.sample))))
    try:
        import uvloop
    except ImportError:
        asyncio.run(worker(args, urls, media))
    else:
        uvloop.run(worker(args, urls, media))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
