"""Tags: create, list with usage counts, rename, delete (removes it from every item)."""

from __future__ import annotations

from control_api.appkeys import STORE
from control_api.presenters.tags import tag_out
from control_api.problems import conflict, not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.common import PageQuery
from control_api.schemas.tags import TagCreate, TagList, TagOut, TagPatch
from control_api.store.tags import TagExists, TagView


def _taken(name: str) -> Exception:
    return conflict(f"a tag named {name!r} already exists in this environment")


@api.route(
    "GET",
    "/v1/tags",
    summary="List tags by name, with how many media carry each",
    tag="tags",
    query=PageQuery,
    response=TagList,
)
async def list_tags(call: Call[None, PageQuery]) -> TagList:
    page = await call.request.app[STORE].tags.list(call.env, call.query.limit, call.query.offset)
    return TagList(tags=[tag_out(v) for v in page.items], total=page.total)


@api.route(
    "POST",
    "/v1/tags",
    summary="Create a tag (names are unique per environment)",
    tag="tags",
    body=TagCreate,
    response=TagOut,
    status=201,
    errors=(409,),
)
async def create_tag(call: Call[TagCreate, None]) -> TagOut:
    try:
        row = await call.request.app[STORE].tags.create(call.env, call.body.name)
    except TagExists:
        raise _taken(call.body.name) from None
    return tag_out(TagView(row, 0))


@api.route(
    "GET",
    "/v1/tags/{tagId}",
    summary="Get a tag",
    tag="tags",
    response=TagOut,
    errors=(404,),
)
async def get_tag(call: Call[None, None]) -> TagOut:
    view = await call.request.app[STORE].tags.get(call.env, call.path("tagId"))
    if view is None:
        raise not_found("tag", call.path("tagId"))
    return tag_out(view)


@api.route(
    "PATCH",
    "/v1/tags/{tagId}",
    summary="Rename a tag (media carrying it show the new name)",
    tag="tags",
    body=TagPatch,
    response=TagOut,
    errors=(404, 409),
)
async def update_tag(call: Call[TagPatch, None]) -> TagOut:
    try:
        view = await call.request.app[STORE].tags.rename(
            call.env, call.path("tagId"), call.body.name
        )
    except TagExists:
        raise _taken(call.body.name) from None
    if view is None:
        raise not_found("tag", call.path("tagId"))
    return tag_out(view)


@api.route(
    "DELETE",
    "/v1/tags/{tagId}",
    summary="Delete a tag and remove it from every media item",
    tag="tags",
    status=204,
    errors=(404,),
)
async def delete_tag(call: Call[None, None]) -> None:
    if not await call.request.app[STORE].tags.delete(call.env, call.path("tagId")):
        raise not_found("tag", call.path("tagId"))
