"""The live-streams resource: every endpoint's success and error paths."""

from __future__ import annotations

from typing import Any

import pytest

from control_api.credentials import hash_secret
from tests.api.conftest import Api


async def _set_state(api: Api, stream_id: str, state: str) -> None:
    env = await api.store.environments.get_by_name("default")
    assert env is not None
    await api.store.live_streams.update(env.id, stream_id, {"state": state})


async def test_create_returns_key_and_urls_once(api: Api) -> None:
    s = await api.new_stream(name="Morning show", quality="high", recording=True)
    assert s["streamId"].startswith("ls_") and s["edgeId"].startswith("lse_")
    assert s["state"] == "idle" and s["enabled"] is True
    assert (s["quality"], s["recording"], s["lowLatency"]) == ("high", True, True)
    assert s["reconnectWindowSeconds"] == 60 and s["playbackPolicy"] == "public"
    assert (s["plan"], s["region"]) == ("standard", "local")
    ingest = s["ingest"]
    key = ingest["streamKey"]
    assert key.startswith("sk_") and len(key) >= 3 + 22
    assert ingest["rtmpUrl"] == f"rtmp://127.0.0.1:{api.settings.rtmp.port}/live"
    assert ingest["rtmpFullUrl"] == f"{ingest['rtmpUrl']}/{key}"
    assert (
        ingest["srtFullUrl"]
        == f"srt://127.0.0.1:{api.settings.srt.port}?streamid=#!::r=live/{key},m=publish"
    )
    assert s["playback"]["hlsUrl"] == f"{api.base}/live/{s['edgeId']}/master.m3u8"
    assert s["playback"]["rtmpUrl"] == f"{ingest['rtmpUrl']}/{s['edgeId']}"
    assert (
        s["playback"]["srtUrl"]
        == f"srt://127.0.0.1:{api.settings.srt.port}?streamid=#!::r=live/{s['edgeId']},m=request"
    )
    assert "srtPassphrase" not in s
    got = await api.call("GET", f"/v1/live-streams/{s['streamId']}")
    assert got.status == 200
    assert "streamKey" not in got.json["ingest"] and key not in got.text
    listed = await api.call("GET", "/v1/live-streams")
    assert key not in listed.text


async def test_stream_key_stored_only_as_hash(api: Api) -> None:
    s = await api.new_stream(srtPassphrase="correct horse battery")
    key = s["ingest"]["streamKey"]
    row = await api.store.live_streams.by_key(key)
    assert row is not None and row.id == s["streamId"]
    assert row.stream_key_hash == hash_secret(key) and key not in row.stream_key_hash
    got = await api.call("GET", f"/v1/live-streams/{s['streamId']}")
    assert "correct horse" not in got.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x", "quality": "ultra"}, "quality"),
        ({"name": "x", "reconnectWindowSeconds": -1}, "reconnectWindowSeconds"),
        ({"name": "x", "srtPassphrase": "short"}, "srtPassphrase"),
        ({"name": "x", "srtPassphrase": "p" * 80}, "srtPassphrase"),
        ({"name": "x", "plan": "gold"}, "plan"),
        ({"name": "x", "region": "mars"}, "region"),
        ({"name": "x", "state": "live"}, "state"),
        ({"name": "x", "lowLatency": None}, "body"),
        ({"name": "x", "stream_key": "sk_mine"}, "stream_key"),
    ],
)
async def test_create_validation_names_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", "/v1/live-streams", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert field in reply.json["detail"] or field in {e["field"] for e in reply.json["errors"]}


async def test_malformed_bodies_are_4xx(make_api: Any) -> None:
    api = await make_api(api={"max_body_bytes": 2048, "rate_limit_per_minute": 1000})
    json_ct = {"Content-Type": "application/json"}
    cases = [
        (dict(raw="{nope", headers=json_ct), 400),
        (dict(raw=b"\xff\xfe", headers=json_ct), 400),
        (dict(raw="[1,2]", headers=json_ct), 422),
        (dict(raw="null", headers=json_ct), 422),
        (dict(raw="name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (dict(raw='{"name": "' + "x" * 4096 + '"}', headers=json_ct), 413),
    ]
    for kwargs, status in cases:
        reply = await api.call("POST", "/v1/live-streams", **kwargs)
        assert reply.status == status, (kwargs, reply.text)
        assert reply.json["status"] == status


async def test_list_pagination(api: Api) -> None:
    ids = [(await api.new_stream(name=f"s{i}"))["streamId"] for i in range(5)]
    page = (await api.call("GET", "/v1/live-streams?limit=2&offset=1")).json
    assert page["total"] == 5 and len(page["streams"]) == 2
    all_ids = [
        s["streamId"] for s in (await api.call("GET", "/v1/live-streams?limit=100")).json["streams"]
    ]
    assert sorted(all_ids) == sorted(ids)
    assert [s["streamId"] for s in page["streams"]] == all_ids[1:3]
    assert (await api.call("GET", "/v1/live-streams?offset=10")).json == {"streams": [], "total": 5}
    for bad in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        reply = await api.call("GET", f"/v1/live-streams?{bad}")
        assert reply.status == 422, bad


async def test_patch(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    reply = await api.call(
        "PATCH",
        f"/v1/live-streams/{sid}",
        body={"name": "renamed", "lowLatency": False, "reconnectWindowSeconds": 5},
    )
    assert reply.status == 200
    assert (reply.json["name"], reply.json["lowLatency"], reply.json["reconnectWindowSeconds"]) == (
        "renamed",
        False,
        5,
    )
    assert (await api.call("PATCH", f"/v1/live-streams/{sid}", body={})).json["name"] == "renamed"
    assert (
        await api.call("PATCH", f"/v1/live-streams/{sid}", body={"state": "live"})
    ).status == 422
    assert (await api.call("PATCH", f"/v1/live-streams/{sid}", body={"name": None})).status == 422
    assert (await api.call("PATCH", "/v1/live-streams/ls_nope", body={"name": "x"})).status == 404


async def test_delete_conflicts_while_publishing(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    for state in ("live", "connecting"):
        await _set_state(api, sid, state)
        reply = await api.call("DELETE", f"/v1/live-streams/{sid}")
        assert reply.status == 409 and reply.json["status"] == 409
    await _set_state(api, sid, "ended")
    assert (await api.call("DELETE", f"/v1/live-streams/{sid}")).status == 204
    assert (await api.call("GET", f"/v1/live-streams/{sid}")).status == 404
    assert (await api.call("DELETE", f"/v1/live-streams/{sid}")).status == 404


async def test_rotate_key(api: Api) -> None:
    s = await api.new_stream()
    sid, old = s["streamId"], s["ingest"]["streamKey"]
    reply = await api.call("POST", f"/v1/live-streams/{sid}/rotate-key")
    assert reply.status == 200
    new = reply.json["streamKey"]
    assert new != old and new.startswith("sk_")
    assert reply.json["rtmpFullUrl"].endswith("/live/" + new)
    assert reply.json["srtFullUrl"].endswith(f"r=live/{new},m=publish")
    assert await api.store.live_streams.by_key(old) is None
    assert (await api.store.live_streams.by_key(new)).id == sid  # type: ignore[union-attr]
    await _set_state(api, sid, "live")
    assert (await api.call("POST", f"/v1/live-streams/{sid}/rotate-key")).status == 409
    assert (await api.call("POST", f"/v1/live-streams/{sid}/rotate-key?force=true")).status == 200
    assert (await api.call("POST", f"/v1/live-streams/{sid}/rotate-key?force=maybe")).status == 422
    assert (await api.call("POST", "/v1/live-streams/ls_nope/rotate-key")).status == 404


async def test_stop_and_start(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    stopped = await api.call("POST", f"/v1/live-streams/{sid}/stop")
    assert stopped.status == 200 and stopped.json["enabled"] is False
    assert (await api.call("GET", f"/v1/live-streams/{sid}")).json["enabled"] is False
    started = await api.call("POST", f"/v1/live-streams/{sid}/start")
    assert started.status == 200 and started.json["enabled"] is True
    assert (await api.call("POST", "/v1/live-streams/ls_nope/stop")).status == 404


async def test_sessions_and_health_of_an_idle_stream(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    assert (await api.call("GET", f"/v1/live-streams/{sid}/sessions")).json == {
        "sessions": [],
        "total": 0,
    }
    health = await api.call("GET", f"/v1/live-streams/{sid}/health")
    assert health.json == {"streamId": sid, "state": "idle"}
    assert (await api.call("GET", "/v1/live-streams/ls_nope/sessions")).status == 404
    assert (await api.call("GET", "/v1/sessions/ses_nope")).status == 404


async def test_unknown_route_and_method(api: Api) -> None:
    missing = await api.call("GET", "/v1/nothing-here")
    assert missing.status == 404 and missing.headers["Content-Type"].startswith(
        "application/problem+json"
    )
    wrong = await api.call("PUT", "/v1/live-streams")
    assert wrong.status == 405 and "GET" in wrong.headers["Allow"]


async def test_playback_tokens(api: Api) -> None:
    import time

    from server.hls import tokens

    s = await api.new_stream(playbackPolicy="private")
    reply = await api.call(
        "POST", f"/v1/live-streams/{s['streamId']}/playback-tokens", body={"expiresInSeconds": 120}
    )
    assert reply.status == 201
    key = await api.store.playback_signing_key()
    assert tokens.verify(key, s["edgeId"], reply.json["token"], time.time())
    assert not tokens.verify(key, "lse_other", reply.json["token"], time.time())
    assert reply.json["expiresAt"].endswith("Z")
    default = await api.call("POST", f"/v1/live-streams/{s['streamId']}/playback-tokens", body={})
    assert default.status == 201
    for bad in ({"expiresInSeconds": 5}, {"expiresInSeconds": "60"}, {"ttl": 60}):
        assert (
            await api.call("POST", f"/v1/live-streams/{s['streamId']}/playback-tokens", body=bad)
        ).status == 422
    assert (
        await api.call("POST", "/v1/live-streams/ls_nope/playback-tokens", body={})
    ).status == 404
    restricted = await api.new_key("restricted")
    assert (
        await api.call(
            "POST", f"/v1/live-streams/{s['streamId']}/playback-tokens", key=restricted, body={}
        )
    ).status == 403


async def test_viewership_of_a_stream_not_live_is_all_zero(api: Api) -> None:
    s = await api.new_stream()
    got = await api.call("GET", f"/v1/live-streams/{s['streamId']}/viewership")
    assert got.status == 200
    assert got.json == {
        "current": {"hls": 0, "rtmp": 0, "srt": 0, "webrtc": 0, "total": 0},
        "peakViewers": 0,
        "totalViews": 0,
        "viewerSeconds": 0.0,
    }
    missing = await api.call("GET", "/v1/live-streams/ls_nope/viewership")
    assert missing.status == 404
