"""Playback cost: server CPU per RTMP player at 10 and 50 players vs nginx-rtmp, and
per SRT reader vs srt-live-transmit (:mod:`bench.play_srt`).

One paced 4 Mbit/s publisher; players join in steps (0, 10, 50) and the server's CPU
is measured over a window at each step, for relaycast and for nginx-rtmp serving
the same players. The players live in this process (asyncio, handshake + connect +
createStream + play, then read and discard), so their cost is not the server's.
Per-player cost = (CPU with N players - CPU with none) / N. Target (issue 18):
relaycast <= 1.5 x nginx-rtmp per player; what scales with players is one write of
the stream's shared pre-chunked bytes per wake-up (``server.playback.fanout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from bench import play_srt, procstat
from bench.multistream import MsTiming
from bench.scenarios import Result, ScenarioConfig, Workers, line, log
from bench.servers import NginxRtmp, Relaycast
from server.protocols.rtmp import amf0
from server.protocols.rtmp.amf0 import AmfValue
from server.protocols.rtmp.chunk import encode_message

STEPS = (10, 50)
TARGET_RATIO = 1.5
SRT_TARGET_RATIO = 1.0
SERVER_ENV = {"RELAYCAST_SRT__PORT": "0"}
HANDSHAKE = 1536


class Player:
    """A reader that plays ``live/NAME`` and discards what it gets (bytes counted)."""

    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self.name = name
        self.bytes = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(b"\x03" + bytes(HANDSHAKE))
            answer = await reader.readexactly(1 + 2 * HANDSHAKE)
            writer.write(answer[1 : 1 + HANDSHAKE])
            connect: dict[str, AmfValue] = {
                "app": "live",
                "tcUrl": f"rtmp://127.0.0.1:{self.port}/live",
            }
            commands: list[tuple[float, str, AmfValue, tuple[AmfValue, ...], int]] = [
                (1.0, "connect", connect, (), 0),
                (2.0, "createStream", None, (), 0),
                (3.0, "play", None, (self.name,), 1),
            ]
            for tid, command, obj, args, msid in commands:
                payload = amf0.encode_values(command, tid, obj, *args)
                writer.write(encode_message(3, 20, msid, 0, payload, 128))
            while data := await reader.read(256 * 1024):
                self.bytes += len(data)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self.task


async def _window(pid: int, players: list[Player], seconds: float) -> Result:
    c0, b0, t0 = procstat.cpu_ns_seconds([pid]), sum(p.bytes for p in players), time.monotonic()
    await asyncio.sleep(seconds)
    c1, b1, t1 = procstat.cpu_ns_seconds([pid]), sum(p.bytes for p in players), time.monotonic()
    mbit = (b1 - b0) * 8 / (t1 - t0) / 1e6
    return {
        "cpu_ms_per_s": (c1 - c0) * 1000 / (t1 - t0),
        "players": len(players),
        "mbit_per_player": mbit / len(players) if players else 0.0,
        "rss_mib": procstat.memory_kib(pid).get("VmRSS", 0) / 1024,
    }


async def _steps(
    pid: int, publish: str, port: int, name: str, sample: Path, timing: MsTiming
) -> list[Result]:
    load = Workers([publish], sample, "paced", 1)
    players: list[Player] = []
    try:
        await load.start()
        await load.go()
        await asyncio.sleep(timing.warmup)
        steps = [await _window(pid, players, timing.window)]
        for count in STEPS:
            while len(players) < count:
                player = Player(port, name)
                player.start()
                players.append(player)
            await asyncio.sleep(timing.warmup)
            steps.append(await _window(pid, players, timing.window))
        await load.stop()
    except BaseException:
        await load.kill()
        raise
    finally:
        for player in players:
            await player.stop()
    return steps


async def _relaycast(sample: Path, timing: MsTiming) -> list[Result]:
    server = Relaycast(extra_env=SERVER_ENV).start()
    try:
        made = server.api("POST", "/v1/live-streams", {"name": "play"})
        publish = server.rtmp_url(made["ingest"]["streamKey"])
        edge = made["playback"]["edgeId"]
        return await _steps(server.pid, publish, server.rtmp_port, edge, sample, timing)
    finally:
        server.stop()


async def _nginx(sample: Path, timing: MsTiming) -> list[Result]:
    server = NginxRtmp().start()
    try:
        publish = server.rtmp_url("play")
        return await _steps(server.pid, publish, server.rtmp_port, "play", sample, timing)
    finally:
        server.stop()


def _per_player(steps: list[Result]) -> dict[int, float]:
    base = steps[0]["cpu_ms_per_s"]
    return {s["players"]: (s["cpu_ms_per_s"] - base) / s["players"] for s in steps[1:]}


async def scenario_play(sample: Path, config: ScenarioConfig) -> list[Result]:
    timing = MsTiming.make(config.quick)
    log(f"PLAY: relaycast, 1 publisher, players {', '.join(map(str, STEPS))}")
    ours_steps = await _relaycast(sample, timing)
    log("PLAY: nginx-rtmp, the same players")
    ref_steps = await _nginx(sample, timing)
    ours_each, ref_each = _per_player(ours_steps), _per_player(ref_steps)
    results = []
    for n, (ours, ref) in enumerate(zip(ours_steps[1:], ref_steps[1:], strict=True)):
        count = STEPS[n]
        ours["cpu_ms_per_player_s"], ref["cpu_ms_per_player_s"] = ours_each[count], ref_each[count]
        ratio = ours_each[count] / ref_each[count] if ref_each[count] > 0 else None
        met = ratio is not None and ratio <= TARGET_RATIO and ours["mbit_per_player"] > 3
        params = {"publishers": 1, "players": count, "quick": config.quick}
        target = f"<= {TARGET_RATIO} x nginx-rtmp per player"
        result = line(f"PLAY-{count}", params, ours, ref, ratio, target, met, config)
        result["row"] = [
            f"PLAY: 1 x 4 Mbit/s -> {count} RTMP players, server CPU ms/s per player",
            f"{ours_each[count]:.2f}",
            f"{ref_each[count]:.2f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            target,
            "yes" if met else "**no**",
            f"{ours['mbit_per_player']:.1f} Mbit/s per player "
            f"(nginx {ref['mbit_per_player']:.1f}); total {ours['cpu_ms_per_s']:.0f} "
            f"ms/s (nginx {ref['cpu_ms_per_s']:.0f})",
        ]
        results.append(result)
    log("PLAY-SRT: relaycast, 1 SRT publisher, readers " + ", ".join(map(str, play_srt.READERS)))
    srt_steps = await play_srt.relaycast_readers(sample, timing)
    log("PLAY-SRT: srt-live-transmit relaying the same publish to one caller")
    relay = await play_srt.slt_relay(sample, timing)
    results += _srt_lines(srt_steps, relay, config)
    return results


def _srt_lines(steps: list[Result], relay: Result, config: ScenarioConfig) -> list[Result]:
    base, ref = steps[0]["cpu_ms_per_s"], relay["cpu_ms_per_s"]
    target = f"<= {SRT_TARGET_RATIO} x srt-live-transmit relaying to one caller"
    results = []
    for step in steps[1:]:
        count = step["readers"]
        each = (step["cpu_ms_per_s"] - base) / count
        step["cpu_ms_per_reader_s"] = each
        ratio = each / ref if ref > 0 else None
        met = ratio is not None and ratio <= SRT_TARGET_RATIO and step["mbit_per_reader"] > 3
        params = {"publishers": 1, "readers": count, "quick": config.quick}
        result = line(f"PLAY-SRT-{count}", params, step, relay, ratio, target, met, config)
        result["row"] = [
            f"PLAY-SRT: 1 x 4 Mbit/s SRT -> {count} SRT readers, server CPU ms/s per reader",
            f"{each:.1f}",
            f"{ref:.1f}",
            f"{ratio:.2f}" if ratio is not None else "-",
            target,
            "yes" if met else "**no**",
            f"{step['mbit_per_reader']:.1f} Mbit/s per reader (relay's caller "
            f"{relay['mbit_per_reader']:.1f}); total {step['cpu_ms_per_s']:.0f} ms/s, "
            f"{base:.0f} with no reader",
        ]
        results.append(result)
    return results
