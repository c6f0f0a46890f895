"""Tasks: background work (URL imports) with status and progress."""

from __future__ import annotations

from control_api.appkeys import STORE
from control_api.presenters.tasks import task_out
from control_api.problems import not_found
from control_api.router import Call
from control_api.routes import api
from control_api.schemas.tasks import TaskOut


@api.route(
    "GET",
    "/v1/tasks/{taskId}",
    summary="Get a task: status, progress 0..1, error or result",
    tag="tasks",
    response=TaskOut,
    allows_restricted_keys=True,
    errors=(404,),
)
async def get_task(call: Call[None, None]) -> TaskOut:
    row = await call.request.app[STORE].tasks.get(call.env, call.path("taskId"))
    if row is None:
        raise not_found("task", call.path("taskId"))
    return task_out(row)
