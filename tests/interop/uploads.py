"""Uploading a file the way a tus client does, for interop tests that need media."""

from __future__ import annotations

import base64
import urllib.request
from pathlib import Path

from tests.interop.conftest import Api


def tus_upload(api: Api, path: Path) -> str:
    """One tus creation and one PATCH with the whole file; the media id (not yet ready)."""
    data = path.read_bytes()
    name = base64.b64encode(path.name.encode()).decode()
    auth = {"Authorization": f"Bearer {api.key}", "Tus-Resumable": "1.0.0"}
    create = urllib.request.Request(
        api.base + "/v1/uploads",
        method="POST",
        headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"},
    )
    with urllib.request.urlopen(create, timeout=10) as resp:
        location, media_id = resp.headers["Location"], str(resp.headers["Relaycast-Media-Id"])
    patch = urllib.request.Request(
        api.base + location,
        data=data,
        method="PATCH",
        headers={**auth, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    with urllib.request.urlopen(patch, timeout=30) as resp:
        assert resp.status == 204
    return media_id
