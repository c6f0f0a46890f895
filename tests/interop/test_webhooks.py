"""Webhooks from a real ``relaycast serve``: ffmpeg's publish lifecycle, push errors, a restart.

The receiver is a real aiohttp server on 127.0.0.1 (tests/webhook_receiver.py); the
signatures are checked with the recipe printed in the README.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.test_webhooks import readme_verifier
from tests.interop.conftest import (
    BareRtmpPublisher,
    Peers,
    StartRelaycast,
    ffmpeg_publish,
    wait_for,
)
from tests.webhook_receiver import Receiver

# disk- or CPU-heavy: after the parallel phase, two at a time (scripts/test.sh)
pytestmark = pytest.mark.serial

LOCAL = {"RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true"}  # receivers on 127.0.0.1
FAST = {
    **LOCAL,
    "RELAYCAST_WEBHOOKS__RETRY_BASE_DELAY": "0.3",
    "RELAYCAST_WEBHOOKS__RETRY_MAX_DELAY": "0.6",
}
STREAM_EVENTS = ["stream.connecting", "stream.live", "stream.ended", "stream.error"]


def _hook(api: Any, url: str, events: list[str]) -> dict[str, Any]:
    created: dict[str, Any] = api.ok(
        "POST", "/v1/webhooks", {"url": url, "events": events}, status=201
    )
    return created


def _deliveries(api: Any, webhook_id: str) -> list[dict[str, Any]]:
    return list(api.ok("GET", f"/v1/webhooks/{webhook_id}/deliveries")["deliveries"])


def _scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def test_ffmpeg_publish_produces_connecting_live_ended_in_order(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    verify = readme_verifier()
    relaycast = start_relaycast(env=LOCAL)
    with Receiver() as receiver:
        hook = _hook(relaycast.api, receiver.url, STREAM_EVENTS)
        stream = relaycast.api.create_stream("hooked", reconnectWindowSeconds=0)
        ffmpeg = peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 3))
        assert ffmpeg.wait(20) == 0, ffmpeg.output()
        got = wait_for(
            receiver.received, lambda r: len(r) >= 3, 15, "three stream events", every=0.2
        )
    events = [r.json for r in got]
    assert [e["type"] for e in events] == ["stream.connecting", "stream.live", "stream.ended"]
    assert [e["data"]["state"] for e in events] == ["connecting", "live", "ended"]
    assert {e["data"]["streamId"] for e in events} == {stream["streamId"]}
    assert [e["createdAt"] for e in events] == sorted(e["createdAt"] for e in events)
    assert events[2]["data"]["endedAt"] and events[1]["data"]["startedAt"]
    for request in got:
        assert verify(hook["secret"], request.headers["Relaycast-Signature"], request.body)
        assert stream["ingest"]["streamKey"] not in request.body.decode()
    wait_for(
        lambda: [d["status"] for d in _deliveries(relaycast.api, hook["webhookId"])],
        lambda statuses: statuses == ["delivered"] * 3,
        5,
        "three deliveries recorded as delivered",
    )
    delivered = 'relaycast_webhook_deliveries_total{result="delivered"} 3.0'
    wait_for(lambda: _scrape(relaycast.server.base), lambda text: delivered in text, 5, delivered)


def test_pending_deliveries_survive_a_restart(start_relaycast: StartRelaycast) -> None:
    """Both an event whose attempts failed before the stop and one produced by the stop
    itself (the shutdown ends the session) are delivered by the next process."""
    receiving = {"up": False}
    with Receiver(lambda _n: 200 if receiving["up"] else 503) as receiver:
        first = start_relaycast(env=FAST)
        api = first.api
        hook = _hook(api, receiver.url, ["stream.connecting", "stream.ended"])
        stream = api.create_stream("restart")
        encoder = BareRtmpPublisher(first.rtmp_url, stream["ingest"]["streamKey"])
        assert encoder.publish() is not None
        wait_for(receiver.received, lambda r: len(r) >= 2, 15, "two refused attempts")
        [pending] = _deliveries(api, hook["webhookId"])
        assert pending["status"] == "pending" and pending["responseStatus"] == 503
        first.server.stop()
        encoder.sock.close()
        refused = len(receiver.received())

        receiving["up"] = True
        second = start_relaycast(env=FAST, key=api.key)
        done = wait_for(
            lambda: _deliveries(second.api, hook["webhookId"]),
            lambda d: len(d) == 2 and all(x["status"] == "delivered" for x in d),
            15,
            "both deliveries after the restart",
        )
        sent = receiver.received()
    ended, connecting = done  # newest first
    assert connecting["deliveryId"] == pending["deliveryId"]
    assert (connecting["eventType"], ended["eventType"]) == ("stream.connecting", "stream.ended")
    # an attempt cut off by the shutdown may have reached the receiver unrecorded
    assert refused < connecting["attempts"] + ended["attempts"] <= len(sent)
    assert {r.json["id"] for r in sent} == {pending["eventId"], ended["eventId"]}
    assert {r.json["data"]["streamId"] for r in sent} == {stream["streamId"]}
    final = [r.json for r in sent if r.json["type"] == "stream.ended"]
    assert final[-1]["data"]["state"] == "ended"


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_kill_9_mid_publish_ends_the_session_where_it_stopped_and_sends_stream_ended_once(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    """SIGKILL while ffmpeg publishes; the restart comes 6 s later. The session ends
    at the last checkpoint before the kill (every 2 s by default), not at the restart,
    with the bytes counted until then, and receivers hear ``stream.ended`` once."""
    with Receiver() as receiver:
        first = start_relaycast(env=LOCAL)
        api = first.api
        _hook(api, receiver.url, ["stream.ended"])
        stream = api.create_stream("crash", reconnectWindowSeconds=60)
        sid = stream["streamId"]
        ffmpeg = peers.start("ffmpeg", ffmpeg_publish(first.publish_url(stream), 60))
        api.wait_media(sid, timeout=10)
        time.sleep(5)  # several checkpoints
        health = api.health(sid)["ingest"]
        before_kill, rate = health["bytesIn"], health["bitrate"] / 8
        first.server.stop(signal.SIGKILL)
        killed = datetime.now(UTC)
        ffmpeg.wait(10)
        time.sleep(6)  # downtime a restart-time end would add to the duration

        second = start_relaycast(env=LOCAL, key=api.key)
        got = wait_for(receiver.received, bool, 15, "stream.ended after the restart", every=0.2)
        time.sleep(2)  # a second announcement would come now
        ended = [r.json for r in receiver.received() if r.json["type"] == "stream.ended"]
        [session] = second.api.sessions(sid)["sessions"]
    assert len(ended) == 1, ended
    assert got[0].json["data"]["streamId"] == sid and ended[0]["data"]["state"] == "ended"
    session_end = _at(session["endedAt"])
    assert abs((session_end - killed).total_seconds()) < 4.0, (session["endedAt"], killed)
    assert _at(ended[0]["data"]["endedAt"]) == session_end
    assert second.api.stream(sid)["state"] == "ended"
    # bytes: all but what arrived after the last checkpoint (at most ~one interval's worth)
    assert before_kill - 4 * rate <= session["bytesIn"] <= before_kill + 2 * rate, (
        session["bytesIn"],
        before_kill,
        rate,
    )


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A port nobody listens on (bound, never accepting), short enough for a destination URL."""
    with socket.socket() as closed:
        for port in random.sample(range(2000, 10000), 200):
            try:
                closed.bind(("127.0.0.1", port))
            except OSError:
                continue
            yield port
            return
    pytest.fail("no free port below 10000")


def test_unreachable_destination_produces_destination_error(
    start_relaycast: StartRelaycast, peers: Peers
) -> None:
    relaycast = start_relaycast(env=LOCAL)
    with _closed_port() as port, Receiver() as receiver:
        _hook(relaycast.api, receiver.url, ["destination.error"])
        stream = relaycast.api.create_stream("pushing", reconnectWindowSeconds=0)
        sid = stream["streamId"]
        destination = relaycast.api.ok(
            "POST",
            f"/v1/live-streams/{sid}/destinations",
            {"url": f"rtmp://127.0.0.1:{port}/live", "streamKey": "dest-key-123"},
            status=201,
        )
        peers.start("ffmpeg", ffmpeg_publish(relaycast.publish_url(stream), 6))
        got = wait_for(receiver.received, bool, 20, "destination.error", every=0.2)[0]
    event = got.json
    assert event["type"] == "destination.error"
    data = event["data"]
    assert (data["destinationId"], data["streamId"]) == (destination["destinationId"], sid)
    assert data["status"]["lastError"]
    assert "dest-key-123" not in got.body.decode()
