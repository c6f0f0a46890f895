"""Live streams: create, list, read, change, delete, rotate the key, stop and start."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from control_api.appkeys import (
    ENDPOINTS,
    INGEST,
    NODE,
    PLAYBACK,
    PLAYOUT,
    RECORDER,
    SETTINGS,
    STORE,
    TRANSCODE,
)
from control_api.channel_fields import channel_fields, patched_schedule
from control_api.nodes import disconnect
from control_api.presenters.live_streams import ingest_health, rendition_health, stream_out
from control_api.presenters.sessions import viewership_out
from control_api.problems import conflict, not_found, validation
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.common import PageQuery
from control_api.schemas.live_streams import (
    PlaybackToken,
    PlaybackTokenCreate,
    RotatedKey,
    RotateQuery,
    StreamCreate,
    StreamHealth,
    StreamList,
    StreamOut,
    StreamPatch,
    Viewership,
)
from control_api.store.live_streams import StreamBusy
from control_api.store.models import LiveStream
from control_api.urls import Endpoints
from server.hls import tokens

BUSY = "the stream has a publisher connected"


async def _stream(call: Call[Any, Any]) -> LiveStream:
    stream_id = call.path("streamId")
    row = await call.request.app[STORE].live_streams.get(call.env, stream_id)
    if row is None:
        raise not_found("live stream", stream_id)
    return row


@api.route(
    "POST",
    "/v1/live-streams",
    summary="Create a live stream (the stream key is shown once)",
    tag="live-streams",
    body=StreamCreate,
    response=StreamOut,
    status=201,
    allows_restricted_keys=True,
)
async def create_live_stream(call: Call[StreamCreate, None]) -> StreamOut:
    settings = call.request.app[SETTINGS]
    body = call.body
    plan = body.plan or settings.default_plan
    region = body.region or settings.default_region
    if plan not in settings.plans:
        raise validation("plan", f"unknown plan; one of {', '.join(sorted(settings.plans))}")
    if region not in settings.regions:
        raise validation("region", f"unknown region; one of {', '.join(settings.regions)}")
    fields = body.model_dump(exclude={"plan", "region", "profile"}, exclude_none=True)
    fields.update(channel_fields(body, settings.playout))
    row, key = await call.request.app[STORE].live_streams.create(
        call.env, {**fields, "plan": plan, "region": region}
    )
    return await _out(call, row, key)


async def _endpoints(call: Call[Any, Any], row: LiveStream) -> Endpoints:
    """The endpoints the stream's URLs name: this node's, or a node of its region."""
    here = call.request.app[ENDPOINTS]
    node = call.request.app.get(NODE)
    elsewhere = await node.endpoints_for([row]) if node is not None else {}
    return elsewhere.get(row.id, here)


async def _out(call: Call[Any, Any], row: LiveStream, key: str | None = None) -> StreamOut:
    return stream_out(row, await _endpoints(call, row), key)


@api.route(
    "GET",
    "/v1/live-streams",
    summary="List live streams, newest first",
    tag="live-streams",
    query=PageQuery,
    response=StreamList,
)
async def list_live_streams(call: Call[None, PageQuery]) -> StreamList:
    page = await call.request.app[STORE].live_streams.list(
        call.env, call.query.limit, call.query.offset
    )
    here = call.request.app[ENDPOINTS]
    node = call.request.app.get(NODE)
    elsewhere = await node.endpoints_for(page.items) if node is not None else {}
    streams = [stream_out(r, elsewhere.get(r.id, here)) for r in page.items]
    return StreamList(streams=streams, total=page.total)


@api.route(
    "GET",
    "/v1/live-streams/{streamId}",
    summary="Get a live stream",
    tag="live-streams",
    response=StreamOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def get_live_stream(call: Call[None, None]) -> StreamOut:
    return await _out(call, await _stream(call))


@api.route(
    "PATCH",
    "/v1/live-streams/{streamId}",
    summary="Change a live stream (media settings apply from the next session)",
    tag="live-streams",
    body=StreamPatch,
    response=StreamOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def update_live_stream(call: Call[StreamPatch, None]) -> StreamOut:
    fields = call.body.model_dump(exclude_unset=True)
    if fields.keys() & {"loop", "scheduled_start", "scheduled_end", "schedule_repeat"}:
        patched_schedule(await _stream(call), fields)
    row = await call.request.app[STORE].live_streams.update(call.env, call.path("streamId"), fields)
    if row is None:
        raise not_found("live stream", call.path("streamId"))
    return await _out(call, row)


@api.route(
    "DELETE",
    "/v1/live-streams/{streamId}",
    summary="Delete a live stream (not while a publisher is connected)",
    tag="live-streams",
    status=204,
    errors=(404, 409),
)
async def delete_live_stream(call: Call[None, None]) -> None:
    try:
        deleted = await call.request.app[STORE].live_streams.delete(call.env, call.path("streamId"))
    except StreamBusy:
        raise conflict(f"{BUSY}; stop it first") from None
    if not deleted:
        raise not_found("live stream", call.path("streamId"))


@api.route(
    "POST",
    "/v1/live-streams/{streamId}/rotate-key",
    summary="Issue a new stream key; the old one stops working at once",
    tag="live-streams",
    query=RotateQuery,
    response=RotatedKey,
    errors=(404, 409),
)
async def rotate_stream_key(call: Call[None, RotateQuery]) -> RotatedKey:
    store = call.request.app[STORE]
    try:
        key = await store.live_streams.rotate_key(call.env, call.path("streamId"), call.query.force)
    except StreamBusy:
        raise conflict(f"{BUSY}; pass ?force=true to disconnect it") from None
    if key is None:
        raise not_found("live stream", call.path("streamId"))
    if call.query.force:
        app = call.request.app
        await disconnect(app[INGEST], app.get(NODE), call.path("streamId"), "rotate")
    ep = call.request.app[ENDPOINTS]
    if call.request.app.get(NODE) is not None:  # the URLs may name a node of its region
        ep = await _endpoints(call, await _stream(call))
    rtmps = f"{ep.rtmps_url}/{key}" if ep.rtmps_url else None
    return RotatedKey(
        stream_key=key,
        rtmp_full_url=f"{ep.rtmp_url}/{key}",
        srt_full_url=ep.srt_full_url(key),
        rtmps_full_url=rtmps,
    )


async def _set_enabled(call: Call[None, None], enabled: bool) -> LiveStream:
    row = await call.request.app[STORE].live_streams.update(
        call.env, call.path("streamId"), {"enabled": enabled}
    )
    if row is None:
        raise not_found("live stream", call.path("streamId"))
    return row


@api.route(
    "POST",
    "/v1/live-streams/{streamId}/stop",
    summary="Disconnect any publisher and refuse ingest until started",
    tag="live-streams",
    response=StreamOut,
    errors=(404,),
)
async def stop_live_stream(call: Call[None, None]) -> StreamOut:
    row = await _set_enabled(call, False)
    playout = call.request.app.get(PLAYOUT)
    if playout is not None and row.source == "queue":
        await playout.stop(row.id)
    await disconnect(call.request.app[INGEST], call.request.app.get(NODE), row.id, "stop")
    # read again: ending the session (publisher or reconnect window) changed the state
    return await _out(call, await _stream(call))


@api.route(
    "POST",
    "/v1/live-streams/{streamId}/start",
    summary="Allow ingest again; a channel starts playing its queue now",
    tag="live-streams",
    response=StreamOut,
    errors=(404, 409),
)
async def start_live_stream(call: Call[None, None]) -> StreamOut:
    row = await _set_enabled(call, True)
    playout = call.request.app.get(PLAYOUT)
    if playout is not None and row.source == "queue":
        problem = await playout.start(row.id)
        if problem is not None:
            raise conflict(problem)
        row = await _stream(call)
    return await _out(call, row)


@api.route(
    "GET",
    "/v1/live-streams/{streamId}/health",
    summary="Current ingest of a stream",
    tag="live-streams",
    response=StreamHealth,
    errors=(404,),
)
async def get_stream_health(call: Call[None, None]) -> StreamHealth:
    """A stream whose encoder is on another node: that node's health of it (asked on
    its internal listener, ``control_api.node_playback``)."""
    row = await _stream(call)
    health = local_health(call.request.app, row.id, row.state)
    node = call.request.app.get(NODE)
    if health.ingest is None and node is not None:
        remote = await node.ask_owner(row.edge_id, "health", row.id)
        if remote is not None:
            return StreamHealth.model_validate({**remote, "streamId": row.id, "state": row.state})
    return health


def local_health(app: web.Application, stream_id: str, state: str) -> StreamHealth:
    """What this node knows of a stream's ingest, recording and renditions."""
    ingest = app[INGEST].health(stream_id)
    recorder = app.get(RECORDER)
    transcode = app.get(TRANSCODE)
    warnings = list(recorder.warnings(stream_id)) if recorder is not None else []
    renditions = []
    if transcode is not None:
        health = transcode.health(stream_id)
        warnings += health.warnings
        renditions = [rendition_health(r) for r in health.renditions]
    return StreamHealth(
        stream_id=stream_id,
        state=state,
        ingest=ingest_health(ingest) if ingest is not None else None,
        warnings=warnings or None,
        renditions=renditions or None,
    )


@api.route(
    "GET",
    "/v1/live-streams/{streamId}/viewership",
    summary="Viewers now (HLS, RTMP, SRT) and of the latest session",
    tag="live-streams",
    response=Viewership,
    errors=(404,),
)
async def get_stream_viewership(call: Call[None, None]) -> Viewership:
    """A stream whose encoder is on another node: that node's figures (every node's
    viewers are counted there)."""
    row = await _stream(call)
    app = call.request.app
    node = app.get(NODE)
    if node is not None and app[INGEST].health(row.id) is None:
        remote = await node.ask_owner(row.edge_id, "viewership", row.id)
        if remote is not None:
            return Viewership.model_validate(remote)
    playback = app.get(PLAYBACK)
    return viewership_out(playback.viewership(row.id) if playback is not None else None)


@api.route(
    "POST",
    "/v1/live-streams/{streamId}/playback-tokens",
    summary="Mint a signed, expiring playback token (for private streams)",
    tag="live-streams",
    body=PlaybackTokenCreate,
    response=PlaybackToken,
    status=201,
    errors=(404,),
)
async def create_playback_token(call: Call[PlaybackTokenCreate, None]) -> PlaybackToken:
    row = await _stream(call)
    expires = int(time.time()) + call.body.expires_in_seconds
    key = await call.request.app[STORE].playback_signing_key()
    return PlaybackToken(
        token=tokens.mint(key, row.edge_id, expires),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
