"""The hostile scenario's judgement and attack payloads, without a server."""

from __future__ import annotations

from typing import Any

from bench.hostile import Sample, _figures, _verdict
from bench.hostile_attacks import PARTIAL_CHUNK, Tally, partial_messages_wire, trickled_connect
from server.protocols.rtmp.chunk import ChunkReader, Message


def _samples() -> list[Sample]:
    baseline = [Sample("baseline", b, 100.0) for b in (0, 2_000_000, 4_000_000, 4_000_000)]
    attack = [Sample("attack", 3_900_000, 180.0), Sample("attack", None, 190.0)]
    return baseline + attack + [Sample("recovery", 4_000_000, 110.0)]


def _figures_with(attacks: dict[str, Any]) -> dict[str, Any]:
    return {**_figures(_samples()), "traceback_lines": 0, "attacks": attacks}


def test_figures_skip_the_ramp_up_and_take_rss_before_peak_after() -> None:
    figures = _figures(_samples())
    assert figures["bitrate_baseline_mbit"] == 4.0
    assert figures["bitrate_attack_mbit"] == 3.9
    assert figures["health_unanswered"] == 1
    assert (figures["rss_before_mib"], figures["rss_peak_mib"], figures["rss_after_mib"]) == (
        100.0,
        190.0,
        110.0,
    )


def test_verdict_names_each_problem() -> None:
    held = Tally("http-idle", made=3)
    held.ended["held-to-end"] = 3
    held.held_ages_s = [5.0, 16.0, 19.5]
    young = Tally("rtmp-handshake-flood", made=2)
    young.ended["held-to-end"] = 2
    young.held_ages_s = [3.0, 9.0]  # within the server's timeouts: not a problem
    met, problems = _verdict(
        _figures_with({"http-idle": held.report(), "rtmp-handshake-flood": young.report()})
    )
    assert not met
    assert problems == ["http-idle: 3 connection(s) still open at the end, oldest 19.5 s"]
    figures = _figures_with({})
    figures["rss_after_mib"] = 121.0
    figures["traceback_lines"] = 2
    met, problems = _verdict(figures)
    assert problems == [
        "RSS 100.0 -> 121.0 MiB after the attack",
        "2 traceback(s) in the log",
    ]
    assert _verdict(_figures_with({})) == (True, [])


def test_partial_messages_are_valid_chunks_that_never_complete() -> None:
    """What the attack sends parses as chunks (it is the buffering, not a parse error,
    that the server must bound) and no message ever completes."""
    wire = partial_messages_wire(streams=3, announced=1 << 20, sent=1 << 19)
    reader = ChunkReader(
        max_message_size=16 << 20,
        max_chunk_size=1 << 20,
        max_chunk_streams=64,
        max_partial_bytes=32 << 20,
    )
    out: list[Message] = []
    reader.feed(wire[:16], out)
    assert [(m.type_id, m.payload) for m in out] == [(1, PARTIAL_CHUNK.to_bytes(4, "big"))]
    reader.set_chunk_size(PARTIAL_CHUNK)
    out.clear()
    reader.feed(wire[16:], out)
    assert out == [] and reader.buffered >= 3 * (1 << 19)


def test_trickled_connect_is_one_byte_at_a_time() -> None:
    pieces = list(trickled_connect())
    assert all(len(p) == 1 for p in pieces) and len(pieces) > 20
