"""How a background task is shown."""

from __future__ import annotations

from control_api.schemas.tasks import TaskOut, TaskResult
from control_api.store.models import Task


def task_out(row: Task) -> TaskOut:
    result = row.result or {}
    return TaskOut(
        task_id=row.id,
        type=row.type,
        status=row.status,
        progress=row.progress,
        error=row.error,
        result=TaskResult(media_id=result["mediaId"]) if "mediaId" in result else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
