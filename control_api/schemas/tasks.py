"""Background tasks (URL imports) as callers follow them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control_api.schemas.common import ApiModel, Timestamp


class TaskResult(ApiModel):
    media_id: str


class TaskOut(ApiModel):
    task_id: str
    type: Literal["media.import"]
    status: Literal["pending", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1, description="0..1; bytes received over Content-Length.")
    error: str | None = None
    result: TaskResult | None = None
    created_at: Timestamp
    updated_at: Timestamp
