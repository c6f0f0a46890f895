"""SRT playback cost: relaycast's CPU per SRT reader (``m=request``) against
srt-live-transmit relaying the same input to one caller.

The input is the same for both: one paced SRT publisher (``bench.srt_loadgen``, the
4 Mbit/s sample as MPEG-TS). relaycast is measured with no reader, then with each
step's readers; per-reader cost = (CPU with N - CPU with none) / N. The reference is
one ``srt-live-transmit`` listening on two ports (the publisher calls one, one
reader calls the other): its whole CPU, receiving included, is what relaying to one
caller costs. Readers are ``srt-live-transmit`` callers writing to /dev/null, in
their own processes, so their cost is nobody's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench import procstat
from bench.multistream import MsTiming
from bench.scenarios import Result
from bench.servers import Relaycast
from bench.srt_scenarios import LATENCY_MS, STREAMID, SrtWorkers, free_udp_port

READERS = (1, 10)
WRAP: list[str] | None = None  # a profiler to run relaycast under (bench development)
_SRT_LINE = re.compile(r"listening srt srt://[^:\s]+:(\d+)")


def _slt() -> str:
    program = shutil.which("srt-live-transmit")
    if program is None:
        raise RuntimeError("srt-live-transmit missing: apt-get install srt-tools")
    return program


def _spawn(*urls: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_slt(), "-q", *urls], stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL
    )


class Reader:
    """An srt-live-transmit caller; what it receives is counted (to show it plays)."""

    def __init__(self, port: int, streamid: str = "") -> None:
        query = f"latency={LATENCY_MS}" + (f"&streamid={streamid}" if streamid else "")
        self.proc = _spawn(f"srt://127.0.0.1:{port}?{query}", "file://con", stdout=subprocess.PIPE)
        self.bytes = 0
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        out = self.proc.stdout
        assert isinstance(out, io.BufferedReader)  # Popen's default buffering
        while data := out.read1(1 << 16):
            self.bytes += len(data)


def _mbit(readers: list[Reader], before: int, seconds: float) -> float:
    if not readers:
        return 0.0
    return (sum(r.bytes for r in readers) - before) * 8 / seconds / 1e6 / len(readers)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _window(pids: list[int], readers: list[Reader], seconds: float) -> Result:
    c0, b0, t0 = procstat.cpu_ns_seconds(pids), sum(r.bytes for r in readers), time.monotonic()
    await asyncio.sleep(seconds)
    c1, t1 = procstat.cpu_ns_seconds(pids), time.monotonic()
    return {
        "cpu_ms_per_s": (c1 - c0) * 1000 / (t1 - t0),
        "readers": len(readers),
        "mbit_per_reader": _mbit(readers, b0, t1 - t0),
    }


async def _publish(url: str, sample: Path) -> SrtWorkers:
    load = SrtWorkers([url], sample, "paced", 1)
    await load.start()
    await load.go()
    return load


async def relaycast_readers(sample: Path, timing: MsTiming) -> list[Result]:
    """relaycast's CPU with no SRT reader, then with each step's readers."""
    server = Relaycast(wrapper=WRAP).start()
    readers: list[Reader] = []
    load: SrtWorkers | None = None
    try:
        match = _SRT_LINE.search("".join(server.stderr))
        if match is None:
            raise RuntimeError("relaycast logged no SRT listener")
        port = int(match[1])
        made = server.api("POST", "/v1/live-streams", {"name": "play-srt"})
        key, edge = made["ingest"]["streamKey"], made["playback"]["edgeId"]
        url = f"srt://127.0.0.1:{port}?streamid=" + STREAMID.format(key=key)
        load = await _publish(url, sample)
        await asyncio.sleep(timing.warmup)
        steps = [await _window([server.pid], [], timing.window)]
        for count in READERS:
            while len(readers) < count:
                readers.append(Reader(port, f"#!::r=live/{edge},m=request"))
            await asyncio.sleep(timing.warmup)
            if any(r.proc.poll() is not None for r in readers):
                raise RuntimeError("an SRT reader of relaycast exited")
            steps.append(await _window([server.pid], readers, timing.window))
        await load.stop()
        load = None
        return steps
    finally:
        if load is not None:
            with contextlib.suppress(Exception):
                await load.kill()
        _stop([r.proc for r in readers])
        server.stop()


async def slt_relay(sample: Path, timing: MsTiming) -> Result:
    """srt-live-transmit relaying the same publish to one caller: its whole CPU."""
    inbound, outbound = free_udp_port(), free_udp_port()
    listen = f"mode=listener&latency={LATENCY_MS}"
    relay = _spawn(f"srt://127.0.0.1:{inbound}?{listen}", f"srt://127.0.0.1:{outbound}?{listen}")
    procs = [relay]
    load: SrtWorkers | None = None
    try:
        await asyncio.sleep(0.3)  # bind
        streamid = STREAMID.format(key="relay")
        load = await _publish(f"srt://127.0.0.1:{inbound}?streamid={streamid}", sample)
        await asyncio.sleep(0.5)  # srt-live-transmit opens its output once input flows
        reader = Reader(outbound)
        procs.append(reader.proc)
        await asyncio.sleep(timing.warmup)
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("srt-live-transmit (relay or reader) exited")
        result = await _window([relay.pid], [reader], timing.window)
        await load.stop()
        load = None
        return result
    finally:
        if load is not None:
            with contextlib.suppress(Exception):
                await load.kill()
        _stop(procs)
