"""Ingest sessions of a stream."""

from __future__ import annotations

from typing import Any

from control_api.appkeys import INGEST, PLAYBACK, STORE
from control_api.presenters.sessions import session_out
from control_api.problems import not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.common import PageQuery
from control_api.schemas.live_streams import SessionList, SessionOut
from control_api.store.models import StreamSession


@api.route(
    "GET",
    "/v1/live-streams/{streamId}/sessions",
    summary="A stream's sessions, newest first",
    tag="sessions",
    query=PageQuery,
    response=SessionList,
    allows_restricted_keys=True,
    errors=(404,),
)
async def list_sessions(call: Call[None, PageQuery]) -> SessionList:
    store = call.request.app[STORE]
    stream_id = call.path("streamId")
    if await store.live_streams.get(call.env, stream_id) is None:
        raise not_found("live stream", stream_id)
    page = await store.stream_sessions.list_for_stream(
        stream_id, call.query.limit, call.query.offset
    )
    items = [_session(call, r) for r in page.items]
    return SessionList(sessions=items, total=page.total)


@api.route(
    "GET",
    "/v1/sessions/{sessionId}",
    summary="One session",
    tag="sessions",
    response=SessionOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def get_session(call: Call[None, None]) -> SessionOut:
    session_id = call.path("sessionId")
    row = await call.request.app[STORE].stream_sessions.get(call.env, session_id)
    if row is None:
        raise not_found("session", session_id)
    return _session(call, row)


def _session(call: Call[Any, Any], row: StreamSession) -> SessionOut:
    """A live session shows the media plane's running figures."""
    if row.ended_at is not None:
        return session_out(row)
    playback = call.request.app.get(PLAYBACK)
    viewers = playback.live_viewership(row.id) if playback is not None else None
    return session_out(row, call.request.app[INGEST].live_bytes(row.id), viewers)
