"""One module per resource; each registers its operations on the shared ``api`` table.

Every route module is listed here: importing this package is what registers them,
and :func:`mount` is the one place that puts them all on an app.
"""

from __future__ import annotations

from aiohttp import web

from control_api.router import Api

api = Api()

from control_api.routes import (  # noqa: E402,F401 - registering routes is the import's purpose
    api_keys,
    auth,
    destinations,
    folders,
    ingest_failures,
    live_streams,
    media,
    meta,
    queue,
    sessions,
    tags,
    tasks,
    uploads,
    webhooks,
)


def mount(app: web.Application) -> None:
    """The JSON operations from the table, and tus uploads (plain aiohttp routes)."""
    api.mount(app)
    uploads.mount(app)
