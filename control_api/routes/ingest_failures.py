"""Ingest diagnostics: why was an encoder refused?

A key sees the refusals tied to its environment's streams. Refusals tied to no
stream (unknown key, wrong app, protocol errors) could come from anyone's encoder,
so only the operator sees them: full-access keys of the ``default`` environment.
"""

from __future__ import annotations

from control_api.appkeys import STORE
from control_api.presenters.ingest_failures import failure_out
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.common import PageQuery
from control_api.schemas.ingest_failures import IngestFailureList
from control_api.store.environments import DEFAULT_ENVIRONMENT


@api.route(
    "GET",
    "/v1/ingest/failures",
    summary="Recent refused publishes, newest first, with the reason",
    tag="ingest",
    query=PageQuery,
    response=IngestFailureList,
)
async def list_ingest_failures(call: Call[None, PageQuery]) -> IngestFailureList:
    store = call.request.app[STORE]
    default = await store.environments.get_by_name(DEFAULT_ENVIRONMENT)
    operator = default is not None and default.id == call.env
    page = await store.ingest_failures.list(call.env, operator, call.query.limit, call.query.offset)
    return IngestFailureList(failures=[failure_out(r) for r in page.items], total=page.total)
