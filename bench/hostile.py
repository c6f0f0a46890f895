"""The ``hostile`` scenario: a legit publisher streams while the server is attacked.

``python -m bench --scenario hostile [--quick]`` starts ``relaycast serve``, publishes
one paced 4 Mbit/s RTMP stream, and runs three phases: baseline, attack, recovery.
The attacks (:mod:`bench.hostile_attacks`) run together: RTMP handshake floods (no
bytes, or C0C1 and never C2), RTMP connections trickling a ``connect`` one byte at a
time, RTMP connections leaving partial messages on many chunk streams, slowloris and
idle HTTP connections, SRT garbage datagrams and an SRT conclusion flood (bad key).

Measured: the publisher's bitrate as the server received it (the stream health API,
once a second) in baseline vs attack, and what the publisher sent in each phase; the
server's RSS before the attack, at its peak and after the recovery; traceback lines
in the server log; per attack, connections made and how each ended. Met when the
bitrate under attack is within 10 % of the baseline, the RSS after is within 20 MB of
the RSS before, no traceback was logged, and no attacking connection was still open
after ``HELD_LIMIT_S`` when the attack ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import hostile_attacks as attack
from bench import procstat
from bench.scenarios import Result, ScenarioConfig, Workers, line, log, offered_mbit
from bench.servers import Relaycast

BITRATE_KEPT = 0.9
RSS_SLACK_MIB = 20.0
HELD_LIMIT_S = 15.0
"""An attacking connection still open this long is a bound that did not act (the
server's handshake and header timeouts are 10 s by default)."""
_SRT_LINE = re.compile(r"listening srt srt://[\d.]+:(\d+)")
_HTTP_PORT = re.compile(r":(\d+)$")


@dataclass(frozen=True)
class Plan:
    baseline: float
    attack: float
    recovery: float
    handshake_flood: int  # connections
    trickle: int
    partial: int
    slowloris: int
    idle_http: int
    datagram_rate: float  # per second, each of the two SRT attacks

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(6.0, 20.0, 10.0, 200, 20, 10, 50, 50, 500.0)
        # 40 s of baseline: the legit stream's HLS window (about 26 s of media) is full
        # before "RSS before" is read, so the RSS check measures what the attacks leave.
        return cls(40.0, 60.0, 30.0, 1000, 100, 20, 300, 300, 2000.0)


@dataclass
class Sample:
    phase: str
    bitrate: int | None
    rss_mib: float


def _health_bitrate(server: Relaycast, stream_id: str) -> int | None:
    try:
        health = server.api("GET", f"/v1/live-streams/{stream_id}/health")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    ingest = (health or {}).get("ingest") or {}
    bitrate = ingest.get("bitrate")
    return int(bitrate) if isinstance(bitrate, int | float) else None


async def _sampler(
    server: Relaycast, stream_id: str, phase: list[str], out: list[Sample], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        bitrate = await asyncio.to_thread(_health_bitrate, server, stream_id)
        rss = procstat.memory_kib(server.pid).get("VmRSS", 0) / 1024
        out.append(Sample(phase[0], bitrate, rss))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _attacks(
    plan: Plan, rtmp: int, http: int, srt: int, stop: asyncio.Event
) -> dict[str, tuple[attack.Tally, Callable[[], Coroutine[Any, Any, None]]]]:
    """Each attack: its tally and the coroutine that runs it until ``stop``."""
    tallies = {
        name: attack.Tally(name)
        for name in (
            "rtmp-handshake-flood",
            "rtmp-trickle",
            "rtmp-partial-messages",
            "http-slowloris",
            "http-idle",
            "srt-garbage",
            "srt-conclusion-flood",
        )
    }

    def tcp(name: str, port: int, opening: attack.Opening, trickle: Any, interval: float) -> Any:
        return lambda: attack.hold_connection(
            tallies[name], port, opening, trickle(), interval, stop
        )

    flood_rate = plan.handshake_flood / (plan.attack / 2)  # all started in half the attack
    half = plan.handshake_flood // 2
    # 7 x 4 MiB announced stays under the 32 MiB a connection may announce at once;
    # 3.5 MiB of each sent: about 24 MB buffered per connection if nothing bounds it
    partial = attack.rtmp_partial_messages(streams=7, announced=4 << 20, sent=7 << 19)

    async def handshake_flood() -> None:
        await asyncio.gather(
            attack.spawn(
                half,
                flood_rate / 2,
                stop,
                tcp("rtmp-handshake-flood", rtmp, attack.nothing, attack.silence, 1.0),
            ),
            attack.spawn(
                plan.handshake_flood - half,
                flood_rate / 2,
                stop,
                tcp("rtmp-handshake-flood", rtmp, attack.c0c1_only, attack.silence, 1.0),
            ),
        )

    runs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "rtmp-handshake-flood": handshake_flood,
        "rtmp-trickle": lambda: attack.spawn(
            plan.trickle,
            20,
            stop,
            tcp("rtmp-trickle", rtmp, attack.rtmp_handshake, attack.trickled_connect, 1.0),
        ),
        "rtmp-partial-messages": lambda: attack.spawn(
            plan.partial, 5, stop, tcp("rtmp-partial-messages", rtmp, partial, attack.silence, 1.0)
        ),
        "http-slowloris": lambda: attack.spawn(
            plan.slowloris,
            50,
            stop,
            tcp("http-slowloris", http, attack.slowloris_request(), attack.slowloris_headers, 2.0),
        ),
        "http-idle": lambda: attack.spawn(
            plan.idle_http, 50, stop, tcp("http-idle", http, attack.nothing, attack.silence, 1.0)
        ),
        "srt-garbage": lambda: attack.srt_garbage(
            tallies["srt-garbage"], srt, plan.datagram_rate, stop
        ),
        "srt-conclusion-flood": lambda: attack.srt_conclusions(
            tallies["srt-conclusion-flood"], srt, plan.datagram_rate, stop
        ),
    }
    return {name: (tallies[name], runs[name]) for name in tallies}


def _median(values: list[int | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) / 1e6 if clean else None


def _figures(samples: list[Sample]) -> Result:
    def of(phase: str) -> list[Sample]:
        return [s for s in samples if s.phase == phase]

    baseline, attacked, recovery = of("baseline"), of("attack"), of("recovery")
    before = baseline[-1].rss_mib if baseline else 0.0
    return {
        # the health bitrate averages a few seconds: skip the ramp-up after publishing
        "bitrate_baseline_mbit": _median([s.bitrate for s in baseline[2:]]),
        "bitrate_attack_mbit": _median([s.bitrate for s in attacked]),
        "bitrate_attack_min_mbit": min(
            (s.bitrate / 1e6 for s in attacked if s.bitrate is not None), default=None
        ),
        "health_unanswered": sum(1 for s in attacked if s.bitrate is None),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(max((s.rss_mib for s in samples), default=0.0), 1),
        "rss_after_mib": round(recovery[-1].rss_mib if recovery else 0.0, 1),
    }


async def _run(server: Relaycast, sample: Path, plan: Plan) -> Result:
    stderr = "".join(server.stderr)
    srt_port = int(_SRT_LINE.search(stderr)[1])  # type: ignore[index]
    http_port = int(_HTTP_PORT.search(server.http_base)[1])  # type: ignore[index]
    stream = server.api("POST", "/v1/live-streams", {"name": "legit"})
    load = Workers([server.rtmp_url(stream["ingest"]["streamKey"])], sample, "paced", 1)
    phase = ["baseline"]
    samples: list[Sample] = []
    done_sampling, stop_attacks = asyncio.Event(), asyncio.Event()
    attacks = _attacks(plan, server.rtmp_port, http_port, srt_port, stop_attacks)
    try:
        await load.start()
        await load.go()
        sampler = asyncio.create_task(
            _sampler(server, stream["streamId"], phase, samples, done_sampling)
        )
        m0 = await load.mark()
        await asyncio.sleep(plan.baseline)
        m1 = await load.mark()
        phase[0] = "attack"
        log(f"hostile: attacking for {plan.attack:.0f} s")
        running = [asyncio.create_task(start()) for _, start in attacks.values()]
        await asyncio.sleep(plan.attack)
        m2 = await load.mark()
        stop_attacks.set()
        await asyncio.wait_for(asyncio.gather(*running), 60)
        phase[0] = "recovery"
        await asyncio.sleep(plan.recovery)
        done_sampling.set()
        await sampler
        m3 = await load.mark()
        done = await load.stop()
    except BaseException:
        stop_attacks.set()
        done_sampling.set()
        await load.kill()
        raise
    log_text = "".join(server.stderr)
    sent = {
        "sent_baseline_mbit": (m1["bytes"] - m0["bytes"]) * 8 / (m1["t"] - m0["t"]) / 1e6,
        "sent_attack_mbit": (m2["bytes"] - m1["bytes"]) * 8 / (m2["t"] - m1["t"]) / 1e6,
        "sent_recovery_mbit": (m3["bytes"] - m2["bytes"]) * 8 / (m3["t"] - m2["t"]) / 1e6,
    }
    return {
        **_figures(samples),
        **{k: round(v, 3) for k, v in sent.items()},
        "publisher_errors": done["errors"],
        "first_publisher_error": done["first_error"],
        "traceback_lines": log_text.count("Traceback (most recent call last)"),
        "error_lines": sum(1 for row in log_text.splitlines() if " ERROR " in row),
        "log_lines": log_text.count("\n"),
        "attacks": {name: tally.report() for name, (tally, _) in attacks.items()},
    }


def _verdict(figures: Result) -> tuple[bool, list[str]]:
    problems = []
    base, under = figures["bitrate_baseline_mbit"], figures["bitrate_attack_mbit"]
    if base is None or under is None or under < BITRATE_KEPT * base:
        problems.append(f"bitrate {under} Mbit/s under attack vs {base} baseline")
    if figures["rss_after_mib"] - figures["rss_before_mib"] > RSS_SLACK_MIB:
        problems.append(
            f"RSS {figures['rss_before_mib']} -> {figures['rss_after_mib']} MiB after the attack"
        )
    if figures["traceback_lines"]:
        problems.append(f"{figures['traceback_lines']} traceback(s) in the log")
    for name, report in figures["attacks"].items():
        oldest = report["held_to_end_max_age_s"]
        if oldest is not None and oldest > HELD_LIMIT_S:
            held = report["ended"]["held-to-end"]
            problems.append(
                f"{name}: {held} connection(s) still open at the end, oldest {oldest} s"
            )
    return not problems, problems


def _row(figures: Result, met: bool, problems: list[str]) -> list[str]:
    what = "hostile: legit 4 Mbit/s RTMP publisher, bitrate received (Mbit/s) baseline / attack"
    cells = [
        what,
        f"{figures['bitrate_attack_mbit']}",
        f"{figures['bitrate_baseline_mbit']}",
        "-",
        f"bitrate >= {BITRATE_KEPT:.0%}, RSS +{RSS_SLACK_MIB:.0f} MB, no traceback",
        "yes" if met else "**no**",
        f"RSS {figures['rss_before_mib']}/{figures['rss_peak_mib']}/{figures['rss_after_mib']} "
        f"MiB; {'; '.join(problems) or 'ok'}",
    ]
    return cells


async def hostile_scenario(sample: Path, config: ScenarioConfig) -> list[Result]:
    plan = Plan.make(config.quick)
    server = Relaycast()
    try:
        await asyncio.to_thread(server.start)
        figures = await _run(server, sample, plan)
    finally:
        await asyncio.to_thread(server.stop)
    met, problems = _verdict(figures)
    for problem in problems:
        log(f"hostile: {problem}")
    params = {"plan": plan.__dict__, "bitrate_mbit": round(offered_mbit(sample), 3)}
    result = line("hostile", params, figures, None, None, "see row", met, config)
    result["problems"] = problems
    result["row"] = _row(figures, met, problems)
    return [result]
