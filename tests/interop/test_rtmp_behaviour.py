"""Stream rules seen from real encoders: keys, one publisher per key, takeover,
the reconnect window, key rotation, stop/start and crash recovery."""

from __future__ import annotations

import signal
import time

import pytest

from server.protocols import rtmp
from tests.interop.conftest import (
    BareRtmpPublisher,
    Peers,
    Relaycast,
    StartRelaycast,
    ffmpeg_publish,
    wait_for,
)

pytestmark = pytest.mark.interop

SMALL = "320x180"
TAKEOVER_SILENCE = 1.0


@pytest.fixture(scope="module")
def relaycast_env() -> dict[str, str]:
    return {"RELAYCAST_INGEST__TAKEOVER_SILENCE_SECONDS": str(TAKEOVER_SILENCE)}


def _remote(relaycast: Relaycast, stream_id: str) -> str | None:
    ingest = relaycast.api.health(stream_id).get("ingest")
    return ingest["remoteAddress"] if ingest and ingest["encoderConnected"] else None


def test_wrong_key_is_refused_fast(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("victim")
    wrong = stream["ingest"]["streamKey"] + "x"
    started = time.monotonic()
    ffmpeg = peers.start("ffmpeg-wrong-key", ffmpeg_publish(relaycast.publish_url(wrong), 5))
    code = ffmpeg.wait(5)
    assert code != 0
    assert time.monotonic() - started < 5
    assert "unknown stream key" in ffmpeg.output(), ffmpeg.output()
    assert "refused rtmp publisher" in relaycast.log()
    assert wrong not in relaycast.log()  # keys are secrets, never logged

    bare = BareRtmpPublisher(relaycast.rtmp_url, wrong)
    try:
        answer = bare.publish()
        assert isinstance(answer, rtmp.PublishFailed), bare.events
        assert answer.code == "NetStream.Publish.BadName"
        assert bare.wait_closed(3)
    finally:
        bare.close()
    assert relaycast.api.state(stream["streamId"]) == "idle"
    assert relaycast.api.sessions(stream["streamId"])["total"] == 0


def test_wrong_app_is_rejected_at_connect(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("app")
    url = relaycast.publish_url(stream).replace("/live/", "/other/")
    ffmpeg = peers.start("ffmpeg-wrong-app", ffmpeg_publish(url, 3, size=SMALL))
    assert ffmpeg.wait(5) != 0
    assert "unknown application" in ffmpeg.output(), ffmpeg.output()
    assert relaycast.api.state(stream["streamId"]) == "idle"


def test_query_strings_on_app_and_key_are_ignored(relaycast: Relaycast) -> None:
    """OBS "Custom" users paste tokens as ``live?x=1`` / ``KEY?y=2``: the key still works."""
    stream = relaycast.api.create_stream("query", reconnectWindowSeconds=0)
    key = stream["ingest"]["streamKey"]
    bare = BareRtmpPublisher(relaycast.rtmp_url + "?token=abc", key + "?y=2", app="live?token=abc")
    try:
        answer = bare.publish()
        assert isinstance(answer, rtmp.PublishStarted), bare.events
        relaycast.api.wait_state(stream["streamId"], "connecting", timeout=5)
    finally:
        bare.close()
    relaycast.api.wait_state(stream["streamId"], "ended", timeout=5)


def test_second_publisher_is_refused_while_first_streams(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = relaycast.api.create_stream("busy", reconnectWindowSeconds=1)
    sid, url = stream["streamId"], relaycast.publish_url(stream)
    first = peers.start("ffmpeg-first", ffmpeg_publish(url, 6, size=SMALL))
    before = relaycast.api.wait_media(sid, timeout=8)["ingest"]

    second = peers.start("ffmpeg-second", ffmpeg_publish(url, 3, size=SMALL))
    assert second.wait(5) != 0
    assert "already in use" in second.output(), second.output()

    after = relaycast.api.health(sid)
    assert after["state"] == "live"
    ingest = after["ingest"]
    assert ingest["remoteAddress"] == before["remoteAddress"]
    assert ingest["sessionId"] == before["sessionId"]
    assert ingest["bitrate"] > 0
    wait_for(
        lambda: relaycast.api.health(sid).get("ingest", {}).get("bytesIn", 0),
        lambda n: n > ingest["bytesIn"],
        timeout=3,
        what="the first publisher to keep delivering",
    )
    assert first.running()
    assert relaycast.api.sessions(sid)["total"] == 1
    assert first.wait(12) == 0, first.output()


def test_silent_publisher_is_taken_over(relaycast: Relaycast, peers: Peers) -> None:
    """SIGSTOP keeps the TCP connection open but silent: a newcomer takes over."""
    stream = relaycast.api.create_stream("takeover", reconnectWindowSeconds=1)
    sid, url = stream["streamId"], relaycast.publish_url(stream)
    stale = peers.start("ffmpeg-stale", ffmpeg_publish(url, 20, size=SMALL))
    first = relaycast.api.wait_media(sid, timeout=8)["ingest"]

    stale.signal(signal.SIGSTOP)
    time.sleep(TAKEOVER_SILENCE + 0.5)
    fresh = peers.start("ffmpeg-fresh", ffmpeg_publish(url, 3, size=SMALL))
    taken = relaycast.api.wait_health(
        sid,
        lambda h: (
            bool(h.get("ingest"))
            and h["ingest"]["remoteAddress"] != first["remoteAddress"]
            and h["ingest"].get("video") is not None
        ),
        timeout=6,
        what="the newcomer's media",
    )
    assert taken["state"] == "live"
    assert taken["ingest"]["sessionId"] == first["sessionId"]  # the same session goes on
    assert "taken over" in relaycast.log()
    assert relaycast.api.sessions(sid)["total"] == 1

    # The stale connection was closed by the server: once resumed, ffmpeg finds out.
    stale.signal(signal.SIGCONT)
    assert stale.wait(8) != 0
    assert _remote(relaycast, sid) == taken["ingest"]["remoteAddress"]
    assert fresh.wait(10) == 0, fresh.output()


def test_reconnect_inside_the_window_keeps_one_session(relaycast: Relaycast, peers: Peers) -> None:
    """The encoder dies (SIGKILL: no unpublish, the socket just closes) and comes back."""
    stream = relaycast.api.create_stream("flaky", reconnectWindowSeconds=4)
    sid, url = stream["streamId"], relaycast.publish_url(stream)
    one = peers.start("ffmpeg-1", ffmpeg_publish(url, 20, size=SMALL))
    session = relaycast.api.wait_health(
        sid, lambda h: h["state"] == "live" and bool(h.get("ingest")), timeout=8, what="live"
    )["ingest"]["sessionId"]
    one.kill()
    away = relaycast.api.wait_health(
        sid,
        lambda h: h["ingest"]["encoderConnected"] is False,
        timeout=3,
        what="the dead encoder to be noticed",
    )
    assert away["ingest"]["encoderLeftAt"] and away["ingest"]["sessionId"] == session
    assert relaycast.api.state(sid) == "live"  # waiting for the encoder to come back

    two = peers.start("ffmpeg-2", ffmpeg_publish(url, 2, size=SMALL))
    again = relaycast.api.wait_health(
        sid, lambda h: h["ingest"]["encoderConnected"] is True, timeout=8, what="the encoder back"
    )
    assert again["state"] == "live"
    assert again["ingest"]["sessionId"] == session
    assert two.wait(10) == 0, two.output()
    relaycast.api.wait_state(sid, "ended", timeout=8)
    sessions = relaycast.api.sessions(sid)
    assert sessions["total"] == 1
    assert sessions["sessions"][0]["endedAt"] is not None
    assert "back inside the reconnect window" in relaycast.log()


def test_reconnect_after_the_window_starts_a_new_session(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = relaycast.api.create_stream("late", reconnectWindowSeconds=1)
    sid, url = stream["streamId"], relaycast.publish_url(stream)
    one = peers.start("ffmpeg-1", ffmpeg_publish(url, 2, size=SMALL))
    relaycast.api.wait_state(sid, "live", timeout=8)
    assert one.wait(10) == 0, one.output()
    relaycast.api.wait_state(sid, "ended", timeout=5)

    two = peers.start("ffmpeg-2", ffmpeg_publish(url, 2, size=SMALL))
    relaycast.api.wait_state(sid, "live", timeout=8)
    assert two.wait(10) == 0, two.output()
    relaycast.api.wait_state(sid, "ended", timeout=5)
    sessions = relaycast.api.sessions(sid)
    assert sessions["total"] == 2
    newest, oldest = sessions["sessions"]
    assert newest["startedAt"] >= oldest["endedAt"]
    assert all(s["endedAt"] and s["bytesIn"] > 0 for s in sessions["sessions"])


def test_forced_key_rotation_disconnects_and_kills_the_old_key(
    relaycast: Relaycast, peers: Peers
) -> None:
    stream = relaycast.api.create_stream("rotate", reconnectWindowSeconds=1)
    sid, old = stream["streamId"], stream["ingest"]["streamKey"]
    encoder = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(old), 20, size=SMALL))
    relaycast.api.wait_state(sid, "live", timeout=8)

    status, _ = relaycast.api.call("POST", f"/v1/live-streams/{sid}/rotate-key")
    assert status == 409  # not while live, unless forced
    started = time.monotonic()
    rotated = relaycast.api.ok("POST", f"/v1/live-streams/{sid}/rotate-key?force=true")
    assert relaycast.api.health(sid).get("ingest", {}).get("encoderConnected") is not True
    encoder.wait(5)
    assert time.monotonic() - started < 2.0, "encoder not disconnected within ~1 s"

    retry = peers.start("ffmpeg-old-key", ffmpeg_publish(relaycast.publish_url(old), 3))
    assert retry.wait(5) != 0
    assert "unknown stream key" in retry.output(), retry.output()

    new = peers.start(
        "ffmpeg-new-key", ffmpeg_publish(rotated["rtmpFullUrl"], 2, size=SMALL), limit=20
    )
    relaycast.api.wait_health(
        sid, lambda h: h.get("ingest", {}).get("encoderConnected") is True, 8, "new key"
    )
    assert new.wait(10) == 0, new.output()


def test_stop_disconnects_and_refuses_until_start(relaycast: Relaycast, peers: Peers) -> None:
    stream = relaycast.api.create_stream("stop", reconnectWindowSeconds=30)
    sid, url = stream["streamId"], relaycast.publish_url(stream)
    encoder = peers.start("ffmpeg", ffmpeg_publish(url, 20, size=SMALL))
    relaycast.api.wait_state(sid, "live", timeout=8)

    started = time.monotonic()
    stopped = relaycast.api.ok("POST", f"/v1/live-streams/{sid}/stop")
    assert stopped["enabled"] is False
    assert stopped["state"] == "ended"  # stop ends the session: no reconnect window
    encoder.wait(5)
    assert time.monotonic() - started < 2.0
    assert relaycast.api.health(sid).get("ingest") is None
    assert relaycast.api.sessions(sid)["sessions"][0]["endedAt"] is not None

    refused = peers.start("ffmpeg-while-stopped", ffmpeg_publish(url, 3, size=SMALL))
    assert refused.wait(5) != 0
    assert "stopped" in refused.output(), refused.output()
    assert relaycast.api.state(sid) == "ended"

    assert relaycast.api.ok("POST", f"/v1/live-streams/{sid}/start")["enabled"] is True
    back = peers.start("ffmpeg-after-start", ffmpeg_publish(url, 2, size=SMALL))
    relaycast.api.wait_state(sid, "live", timeout=8)
    assert back.wait(10) == 0, back.output()
    assert relaycast.api.sessions(sid)["total"] == 2


def test_restart_after_crash_closes_stale_sessions(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    first = start_relaycast()
    stream = first.api.create_stream("crash", reconnectWindowSeconds=60)
    sid = stream["streamId"]
    encoder = peers.start("ffmpeg", ffmpeg_publish(first.publish_url(stream), 20, size=SMALL))
    first.api.wait_state(sid, "live", timeout=8)

    first.server.stop(signal.SIGKILL)
    encoder.kill()
    second = start_relaycast(data_dir=first.data_dir, key=first.api.key)
    assert "closed 1 stale session(s), ended 1 stream(s) left live" in second.log()
    after = second.api.stream(sid)
    assert after["state"] == "ended" and after["endedAt"] is not None
    sessions = second.api.sessions(sid)
    assert sessions["total"] == 1
    assert sessions["sessions"][0]["endedAt"] is not None
    assert sessions["sessions"][0]["durationSeconds"] >= 0

    # The key still works on the new process.
    bare = BareRtmpPublisher(second.rtmp_url, stream["ingest"]["streamKey"])
    try:
        assert isinstance(bare.publish(), rtmp.PublishStarted), bare.events
        second.api.wait_state(sid, "connecting", timeout=5)
    finally:
        bare.close()
