"""The record benchmark's write check: recorder bytes against ingest bytes, from /metrics."""

from __future__ import annotations

from bench.record import median_run, written_share

METRICS = """# HELP relaycast_ingest_bytes_total this session's bytes received
# TYPE relaycast_ingest_bytes_total counter
relaycast_ingest_bytes_total{stream_id="st_1"} 1000
relaycast_ingest_bytes_total{stream_id="st_2"} 3000
relaycast_ingest_bytes_total_created{stream_id="st_2"} 1.7e9
# TYPE relaycast_recording_bytes_written_total counter
relaycast_recording_bytes_written_total 3.6e3
"""


def test_written_share_sums_every_stream() -> None:
    assert written_share(METRICS) == {
        "recorded_bytes": 3600.0,
        "ingest_bytes": 4000.0,
        "written_per_ingest": 0.9,
    }
    assert written_share("")["written_per_ingest"] == 0.0


def test_the_median_run_stands_for_its_side() -> None:
    runs = [{"cpu_ms_per_s": v, "id": i} for i, v in enumerate([70.0, 50.0, 55.0])]
    assert median_run(runs)["id"] == 2
    assert median_run(runs[:2])["id"] == 1  # an even count takes the lower middle
    assert median_run(runs[:1])["id"] == 0
