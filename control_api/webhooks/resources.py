"""Events carry their resource exactly as the API shows it (same models, same fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control_api.presenters.destinations import destination_out
from control_api.presenters.live_streams import stream_out
from control_api.presenters.media import media_out
from control_api.presenters.tasks import task_out
from control_api.store.models import Destination, LiveStream, Media, Task
from control_api.urls import Endpoints
from control_api.webhooks.dispatcher import Renderer
from control_api.webhooks.events import Resource
from server.push.manager import PushManager


def renderer(endpoints: Endpoints, push: PushManager) -> Renderer:
    """Stream URLs depend on the listeners' real ports, hence the endpoints; a
    destination's status is the push manager's snapshot at the moment of the event."""

    def render(resource: Resource) -> Mapping[str, Any]:
        if isinstance(resource, LiveStream):
            model: Any = stream_out(resource, endpoints)
        elif isinstance(resource, Media):
            model = media_out(resource, endpoints)
        elif isinstance(resource, Task):
            model = task_out(resource)
        elif isinstance(resource, Destination):
            model = destination_out(resource, push)
        else:
            return dict(resource)
        data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data

    return render
