"""A channel's media queue: list (with what is on air), add, reorder, remove, skip.

The store keeps the order; the playout service reads it at every item boundary, so
changes apply there, except a skip or the removal of the item on air, which the
service is told about at once.
"""

from __future__ import annotations

from typing import Any

from control_api.appkeys import PLAYOUT, STORE
from control_api.presenters.queue import now_playing_out, queue_item_out
from control_api.problems import conflict, not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.channels import QueueItemCreate, QueueItemOut, QueueItemPatch, QueueList
from control_api.schemas.common import PageQuery
from control_api.store.models import LiveStream
from control_api.store.queue import MediaNotReady, UnknownQueueMedia

BASE = "/v1/live-streams/{streamId}/queue"


async def _channel(call: Call[Any, Any]) -> LiveStream:
    stream_id = call.path("streamId")
    row = await call.request.app[STORE].live_streams.get(call.env, stream_id)
    if row is None:
        raise not_found("live stream", stream_id)
    if row.source != "queue":
        raise conflict(f"live stream {stream_id!r} is not a channel (its source is an encoder)")
    return row


@api.route(
    "GET",
    BASE,
    summary="A channel's queue, in order, with the item on air",
    tag="channels",
    query=PageQuery,
    response=QueueList,
    errors=(404, 409),
)
async def list_queue(call: Call[None, PageQuery]) -> QueueList:
    row = await _channel(call)
    page = await call.request.app[STORE].queue.list(row.id, call.query.limit, call.query.offset)
    playout = call.request.app.get(PLAYOUT)
    return QueueList(
        items=[queue_item_out(item, media) for item, media in page.items],
        total=page.total,
        now_playing=now_playing_out(playout.on_air(row.id) if playout else None),
    )


@api.route(
    "POST",
    BASE,
    summary="Queue a ready media item (at a position, or at the end)",
    tag="channels",
    body=QueueItemCreate,
    response=QueueItemOut,
    status=201,
    errors=(404, 409),
)
async def add_queue_item(call: Call[QueueItemCreate, None]) -> QueueItemOut:
    row = await _channel(call)
    try:
        item, media = await call.request.app[STORE].queue.add(
            call.env, row.id, call.body.media_id, call.body.position
        )
    except UnknownQueueMedia:
        raise not_found("media item", call.body.media_id) from None
    except MediaNotReady as exc:
        raise conflict(
            f"media item {call.body.media_id!r} is {exc.status}; only ready items can be queued"
        ) from None
    return queue_item_out(item, media)


@api.route(
    "PATCH",
    BASE + "/{itemId}",
    summary="Move a queue item (the others close up); applies at the next item boundary",
    tag="channels",
    body=QueueItemPatch,
    response=QueueItemOut,
    errors=(404, 409),
)
async def move_queue_item(call: Call[QueueItemPatch, None]) -> QueueItemOut:
    row = await _channel(call)
    found = await call.request.app[STORE].queue.move(
        row.id, call.path("itemId"), call.body.position
    )
    if found is None:
        raise not_found("queue item", call.path("itemId"))
    return queue_item_out(*found)


@api.route(
    "DELETE",
    BASE + "/{itemId}",
    summary="Remove a queue item (the item on air: playout moves to the next at once)",
    tag="channels",
    status=204,
    errors=(404, 409),
)
async def remove_queue_item(call: Call[None, None]) -> None:
    row = await _channel(call)
    removed = await call.request.app[STORE].queue.remove(row.id, call.path("itemId"))
    if removed is None:
        raise not_found("queue item", call.path("itemId"))
    playout = call.request.app.get(PLAYOUT)
    if playout is not None:
        playout.removed(row.id, removed.id, removed.position)


@api.route(
    "POST",
    BASE + "/skip",
    summary="End the item on air now; playout goes on with the next",
    tag="channels",
    status=204,
    errors=(404, 409),
)
async def skip_queue_item(call: Call[None, None]) -> None:
    row = await _channel(call)
    playout = call.request.app.get(PLAYOUT)
    if playout is None or not playout.skip(row.id):
        raise conflict(f"channel {row.id!r} is not playing")
