"""Multistream destinations over the API: limits, validation, secrets, status, scoping."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, ApiFactory

KEY = "live_9x8y7z-secret-stream-key"
PASS = "a-long-srt-passphrase"


def _path(stream_id: str, destination_id: str = "") -> str:
    base = f"/v1/live-streams/{stream_id}/destinations"
    return f"{base}/{destination_id}" if destination_id else base


async def _create(api: Api, stream_id: str, key: str | None = "admin", **body: Any) -> Any:
    reply = await api.call("POST", _path(stream_id), key=key, body=body)
    assert reply.status == 201, reply.text
    return reply.json


async def test_create_hides_the_stream_key(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    d = await _create(api, sid, url="rtmp://a.rtmp.youtube.com/live2", streamKey=KEY, name="YT")
    assert d["destinationId"].startswith("dst_") and d["streamId"] == sid
    assert (d["name"], d["url"], d["enabled"]) == ("YT", "rtmp://a.rtmp.youtube.com/live2", True)
    assert d["status"]["state"] == "idle" and d["status"]["bytesSent"] == 0
    assert "streamKey" not in d
    for reply in (
        await api.call("GET", _path(sid)),
        await api.call("GET", _path(sid, d["destinationId"])),
    ):
        assert reply.status == 200 and KEY not in reply.text
    listed = (await api.call("GET", _path(sid))).json
    assert listed["total"] == 1 and listed["destinations"][0]["destinationId"] == d["destinationId"]


async def test_srt_passphrase_and_streamid_leave_the_url(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    url = f"srt://127.0.0.1:49999?latency=200&passphrase={PASS}&streamid={KEY}"
    d = await _create(api, sid, url=url)
    assert d["url"] == "srt://127.0.0.1:49999?latency=200"
    assert d["name"] == "127.0.0.1"
    env = await api.store.environments.get_by_name("default")
    assert env is not None
    row = await api.store.destinations.get(env.id, sid, d["destinationId"])
    assert row is not None and (row.stream_key, row.srt_passphrase) == (KEY, PASS)
    specs = await api.store.destinations.destinations(sid)
    assert PASS in specs[0].url and KEY in specs[0].url
    assert PASS not in specs[0].redacted and KEY not in specs[0].redacted
    assert PASS not in repr(specs[0]) and KEY not in repr(specs[0])
    # a new URL without a passphrase keeps the stored one
    patched = await api.call(
        "PATCH", _path(sid, d["destinationId"]), body={"url": "srt://127.0.0.1:9998"}
    )
    assert patched.status == 200 and patched.json["url"] == "srt://127.0.0.1:9998"
    row = await api.store.destinations.get(env.id, sid, d["destinationId"])
    assert row is not None and (row.stream_key, row.srt_passphrase) == (KEY, PASS)


async def test_the_eleventh_destination_is_refused(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    for i in range(10):
        await _create(api, sid, url=f"rtmp://h{i}.example/live", streamKey=f"k{i}")
    reply = await api.call(
        "POST", _path(sid), body={"url": "rtmp://h.example/live", "streamKey": "k"}
    )
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert "at most 10" in reply.json["detail"]
    assert (await api.call("GET", _path(sid))).json["total"] == 10
    # another stream has its own ten
    other = (await api.new_stream())["streamId"]
    await _create(api, other, url="rtmp://h.example/live", streamKey="k")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/live"}, "url"),
        ({"url": "rtmp:///live"}, "url"),
        ({"url": "rtmp://host"}, "url"),
        ({"url": "rtmp://user:pw@host/live"}, "url"),
        ({"url": "srt://host"}, "url"),
        ({"url": "srt://host:9000?mode=listener"}, "url"),
        ({"url": "srt://host:9000?passphrase=short"}, "url"),
        ({"url": "rtmp://host/live", "streamKey": "a b"}, "streamKey"),
        ({"url": "rtmp://host/live", "streamKey": "a/b"}, "streamKey"),
        ({"url": "rtmp://host/live", "streamKey": "a#b"}, "streamKey"),
        ({"url": "srt://h:1?streamid=x&mode=caller"}, "url"),
        ({"url": "rtmp://host/live", "enabled": "yes"}, "enabled"),
        ({"streamKey": "k"}, "url"),
    ],
)
async def test_bad_destinations_are_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    sid = (await api.new_stream())["streamId"]
    reply = await api.call("POST", _path(sid), body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json["errors"][0]["field"] == field  # no pydantic union tags


async def test_patch_disable_and_delete(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    d = await _create(api, sid, url="rtmps://live-api-s.facebook.com:443/rtmp", streamKey=KEY)
    path = _path(sid, d["destinationId"])
    off = await api.call("PATCH", path, body={"enabled": False, "name": "fb"})
    assert off.status == 200
    assert (off.json["enabled"], off.json["name"], off.json["status"]["state"]) == (
        False,
        "fb",
        "disabled",
    )
    assert KEY not in off.text
    rekey = await api.call("PATCH", path, body={"streamKey": "other"})
    assert rekey.status == 200 and "other" not in rekey.text
    bad = await api.call("PATCH", path, body={"url": "ftp://x/y"})
    assert bad.status == 422
    assert (await api.call("DELETE", path)).status == 204
    assert (await api.call("GET", path)).status == 404
    assert (await api.call("DELETE", path)).status == 404
    assert (await api.call("PATCH", path, body={"name": "x"})).status == 404


async def test_scoping_and_unknown_ids(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    d = await _create(api, sid, url="rtmp://h/live", streamKey="k")
    assert (await api.call("GET", _path("ls_nope"))).status == 404
    assert (await api.call("GET", _path(sid, "dst_nope"))).status == 404
    other_sid = (await api.new_stream())["streamId"]
    assert (await api.call("GET", _path(other_sid, d["destinationId"]))).status == 404
    foreign = await api.new_key(env="elsewhere")
    assert (await api.call("GET", _path(sid), key=foreign)).status == 404
    assert (await api.call("GET", _path(sid, d["destinationId"]), key=foreign)).status == 404


async def test_restricted_keys_create_get_patch_only(api: Api) -> None:
    restricted = await api.new_key("restricted")
    sid = (await api.new_stream())["streamId"]
    d = await _create(api, sid, key=restricted, url="rtmp://h/live", streamKey="k")
    path = _path(sid, d["destinationId"])
    assert (await api.call("GET", path, key=restricted)).status == 200
    assert (await api.call("PATCH", path, key=restricted, body={"name": "n"})).status == 200
    assert (await api.call("GET", _path(sid), key=restricted)).status == 403
    assert (await api.call("DELETE", path, key=restricted)).status == 403


async def test_deleting_the_stream_deletes_its_destinations(api: Api) -> None:
    sid = (await api.new_stream())["streamId"]
    await _create(api, sid, url="rtmp://h/live", streamKey="k")
    assert (await api.call("DELETE", f"/v1/live-streams/{sid}")).status == 204
    assert await api.store.destinations.destinations(sid) == []


async def test_a_destination_pushes_the_source_or_a_rung_it_names(api: Api) -> None:
    sid = (await api.new_stream(quality="standard"))["streamId"]
    plain = await _create(api, sid, url="rtmp://h/live", streamKey="k")
    assert plain["rendition"] == "source"
    d = await _create(api, sid, url="rtmp://h2/live", streamKey="k2", rendition="480p")
    assert d["rendition"] == "480p"
    path = _path(sid, d["destinationId"])
    patched = await api.call("PATCH", path, body={"rendition": "360p"})
    assert patched.status == 200 and patched.json["rendition"] == "360p"
    assert (await api.call("GET", path)).json["rendition"] == "360p"
    specs = {s.destination_id: s for s in await api.store.destinations.destinations(sid)}
    assert specs[d["destinationId"]].rendition == "360p"
    assert specs[plain["destinationId"]].rendition == "source"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_an_unknown_rendition_is_422_naming_the_choices(api: Api, method: str) -> None:
    sid = (await api.new_stream())["streamId"]
    d = await _create(api, sid, url="rtmp://h/live", streamKey="k")
    path = _path(sid, d["destinationId"]) if method == "PATCH" else _path(sid)
    body = {"rendition": "4k"} if method == "PATCH" else {"url": "rtmp://h/live", "rendition": "4k"}
    reply = await api.call(method, path, body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.json["errors"][0]["field"] == "rendition"
    assert "1080p, 360p, 480p, 720p, source" in reply.json["errors"][0]["message"]
    assert (await api.call("GET", _path(sid, d["destinationId"]))).json["rendition"] == "source"


async def test_a_rung_the_configured_ladders_lack_is_refused_when_asked_for(
    make_api: ApiFactory,
) -> None:
    one_rung = {"standard": [{"name": "360p", "height": 360, "video_bitrate": 800_000}]}
    api = await make_api(transcode={"ladders": one_rung})
    sid = (await api.new_stream(quality="standard"))["streamId"]
    refused = await api.call(
        "POST", _path(sid), body={"url": "rtmp://h/live", "streamKey": "k", "rendition": "720p"}
    )
    assert refused.status == 422, refused.text
    assert refused.json["errors"][0]["field"] == "rendition"
    assert await api.store.destinations.destinations(sid) == []
    ok = await _create(api, sid, url="rtmp://h/live", streamKey="k", rendition="360p")
    assert ok["rendition"] == "360p"
    schemas = (await api.call("GET", "/v1/openapi.json")).json["components"]["schemas"]
    for model in ("DestinationCreate", "DestinationPatch"):
        assert schemas[model]["properties"]["rendition"]["enum"] == ["360p", "source"]
