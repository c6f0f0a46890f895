"""One module per resource; each registers its operations on the shared ``api`` table."""

from __future__ import annotations

from control_api.router import Api

api = Api()

from control_api.routes import (  # noqa: E402,F401 - registering routes is the import's purpose
    api_keys,
    auth,
    folders,
    ingest_failures,
    live_streams,
    media,
    meta,
    sessions,
    tags,
    tasks,
    webhooks,
)
