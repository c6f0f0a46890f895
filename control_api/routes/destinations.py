"""Multistream destinations of a live stream: list, create, read, change, remove.

Every change is handed to the push manager at once (``refresh``), which touches
only the destination that changed; the status shown is the manager's own snapshot.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from control_api.appkeys import PUSH, SETTINGS, STORE
from control_api.presenters.destinations import destination_out
from control_api.problems import Problem, not_found, validation
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.destinations import (
    DestinationCreate,
    DestinationList,
    DestinationOut,
    DestinationPatch,
)
from control_api.store.destinations import MAX_PER_STREAM, TooManyDestinations
from control_api.store.models import Destination
from server.push.destination_url import (
    check_publish_url,
    publish_url,
    scheme_of,
    split_destination_url,
)
from server.transcode.ladder import SOURCE, rung_names

BASE = "/v1/live-streams/{streamId}/destinations"


async def _stream_id(call: Call[Any, Any]) -> str:
    stream_id = call.path("streamId")
    if await call.request.app[STORE].live_streams.get(call.env, stream_id) is None:
        raise not_found("live stream", stream_id)
    return stream_id


async def _destination(call: Call[Any, Any]) -> Destination:
    stream_id = await _stream_id(call)
    destination_id = call.path("destinationId")
    row = await call.request.app[STORE].destinations.get(call.env, stream_id, destination_id)
    if row is None:
        raise not_found("destination", destination_id)
    return row


def _secrets(url: str, key: str | None, passphrase: str | None) -> dict[str, str | None]:
    """Check that URL, key and passphrase make a URL the pusher can open.

    An RTMP URL without a key is kept as given (the key may be its last segment, or
    come later by PATCH); if it cannot be published to, the status says why."""
    if key or scheme_of(url) == "srt":
        try:
            check_publish_url(publish_url(url, key, passphrase))
        except ValueError as exc:
            raise validation("url", str(exc)) from None
    return {"url": url, "stream_key": key, "srt_passphrase": passphrase}


def _default_name(url: str) -> str:
    host = urlsplit(url.replace("#", "%23")).hostname
    return (host or url)[:200]


@api.route(
    "GET",
    BASE,
    summary="List a stream's multistream destinations with their push status",
    tag="destinations",
    response=DestinationList,
    errors=(404,),
)
async def list_destinations(call: Call[None, None]) -> DestinationList:
    stream_id = await _stream_id(call)
    rows = await call.request.app[STORE].destinations.list_for(call.env, stream_id)
    push = call.request.app[PUSH]
    return DestinationList(destinations=[destination_out(r, push) for r in rows], total=len(rows))


def _rendition(call: Call[Any, Any], rendition: str) -> str:
    """ "source" or a rung some ladder has; anything else is a 422 naming the choices."""
    rungs = rung_names(call.request.app[SETTINGS].transcode.ladders)
    if rendition != SOURCE and rendition not in rungs:
        choices = ", ".join(sorted(rungs | {SOURCE}))
        raise validation("rendition", f"unknown rendition {rendition!r} (one of {choices})")
    return rendition


@api.route(
    "POST",
    BASE,
    summary=f"Add a destination (at most {MAX_PER_STREAM}); pushed at once when live",
    tag="destinations",
    body=DestinationCreate,
    response=DestinationOut,
    status=201,
    allows_restricted_keys=True,
    errors=(404,),
)
async def create_destination(call: Call[DestinationCreate, None]) -> DestinationOut:
    stream_id = await _stream_id(call)
    body = call.body
    rendition = _rendition(call, body.rendition)
    split = split_destination_url(body.url)
    fields = _secrets(split.url, body.stream_key or split.stream_key, split.passphrase)
    name = body.name or _default_name(split.url)
    store = call.request.app[STORE]
    try:
        row = await store.destinations.create(
            call.env,
            stream_id,
            {**fields, "name": name, "enabled": body.enabled, "rendition": rendition},
        )
    except TooManyDestinations:
        raise Problem(
            422,
            f"a live stream has at most {MAX_PER_STREAM} destinations",
            slug="too-many-destinations",
        ) from None
    push = call.request.app[PUSH]
    await push.refresh(stream_id)
    return destination_out(row, push)


@api.route(
    "GET",
    BASE + "/{destinationId}",
    summary="Get a destination and its push status",
    tag="destinations",
    response=DestinationOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def get_destination(call: Call[None, None]) -> DestinationOut:
    return destination_out(await _destination(call), call.request.app[PUSH])


def _patched_secrets(row: Destination, body: DestinationPatch) -> dict[str, str | None]:
    """A new URL keeps the stored key and (for SRT) passphrase unless it brings its own."""
    if body.url is None:
        if body.stream_key is None:
            return {}
        return _secrets(row.url, body.stream_key, row.srt_passphrase)
    split = split_destination_url(body.url)
    key = body.stream_key or split.stream_key or row.stream_key
    passphrase = split.passphrase
    if passphrase is None and scheme_of(split.url) == "srt" == scheme_of(row.url):
        passphrase = row.srt_passphrase
    return _secrets(split.url, key, passphrase)


@api.route(
    "PATCH",
    BASE + "/{destinationId}",
    summary="Change a destination; when live only this destination reconnects",
    tag="destinations",
    body=DestinationPatch,
    response=DestinationOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def update_destination(call: Call[DestinationPatch, None]) -> DestinationOut:
    row = await _destination(call)
    body = call.body
    fields: dict[str, Any] = _patched_secrets(row, body)
    if body.name is not None:
        fields["name"] = body.name
    if body.enabled is not None:
        fields["enabled"] = body.enabled
    if body.rendition is not None:
        fields["rendition"] = _rendition(call, body.rendition)
    store = call.request.app[STORE]
    updated = await store.destinations.update(call.env, row.stream_id, row.id, fields)
    if updated is None:
        raise not_found("destination", row.id)
    push = call.request.app[PUSH]
    await push.refresh(row.stream_id)
    return destination_out(updated, push)


@api.route(
    "DELETE",
    BASE + "/{destinationId}",
    summary="Remove a destination (stops its push)",
    tag="destinations",
    status=204,
    errors=(404,),
)
async def delete_destination(call: Call[None, None]) -> None:
    row = await _destination(call)
    if not await call.request.app[STORE].destinations.delete(call.env, row.stream_id, row.id):
        raise not_found("destination", row.id)
    await call.request.app[PUSH].refresh(row.stream_id)
