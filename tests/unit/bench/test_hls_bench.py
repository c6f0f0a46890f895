"""The HLS benchmarks' pure parts: playlist numbering, next request, latency matching."""

from __future__ import annotations

from bench.hls_playlist import next_request, parse_parts, parse_segments
from bench.hls_scenarios import Listings, SendLog, _latencies, percentile

DELTA = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,HOLD-BACK=6,CAN-SKIP-UNTIL=12
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:06.000Z
#EXT-X-PART:DURATION=1.000,URI="part103.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="part103.1.m4s"
#EXTINF:2.000,
seg103.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:08.000Z
#EXT-X-PART:DURATION=0.500,URI="part104.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part104.1.m4s"
"""


def test_delta_update_numbering_and_next_request() -> None:
    segments = parse_segments(DELTA)
    assert [(s.msn, s.duration) for s in segments] == [(103, 2.0), (104, None)]
    parts = parse_parts(DELTA)
    assert [(p.msn, p.index, p.uri) for p in parts] == [
        (103, 0, "part103.0.m4s"),
        (103, 1, "part103.1.m4s"),
        (104, 0, "part104.0.m4s"),
    ]
    first, second = (s.program_date_time for s in segments)
    assert first is not None and second == first + 2
    assert next_request(DELTA, parts) == "?_HLS_msn=104&_HLS_part=1&_HLS_skip=YES"
    assert next_request("#EXTM3U\n", []) == ""


def test_latencies_match_parts_to_the_frames_sent() -> None:
    """Frames every 0.1 s sent at media time + 10 s; a part is listed 30 ms after the
    send of the frame following its last one."""
    sends = SendLog(media=[i / 10 for i in range(100)], sent=[10 + i / 10 for i in range(100)])
    listings = Listings()
    listings.see(DELTA, now=0.0)
    assert listings.origin is not None
    # segment 103's PDT is the first seen, so media time 0; part 103.1 covers 1..2 s
    start, end, _, independent = listings.parts[(103, 1)]
    assert (start, end, independent) == (1.0, 2.0, False)
    listings.parts = {k: (s, e, 10 + e + 0.03, i) for k, (s, e, _, i) in listings.parts.items()}
    listings.segments = {103: (0.0, 12.03)}
    result = _latencies(listings, sends, warmup=0.0)
    after_last = result["part_listed_after_last_frame_s"]
    assert after_last["count"] == 3 and abs(after_last["p95"] - 0.13) < 1e-6
    key = result["keyframe_to_part_listed_s"]
    # 103.0: keyframe sent at 10.0, listed at 11.03; 104.0: sent at 12.0, listed at 12.53
    assert key["count"] == 2 and abs(key["p50"] - 0.78) < 1e-6 and abs(key["max"] - 1.03) < 1e-6
    assert abs(result["keyframe_to_segment_listed_s"]["p50"] - 2.03) < 1e-6


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0 and percentile(values, 50) == 50.0
    assert percentile([], 95) is None
