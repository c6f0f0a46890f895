"""/docs rendered by a real headless Chromium, with no network but this server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import FLAGS, sync_browser
from tests.serverproc import start_server

# disk- or CPU-heavy: after the parallel phase, two at a time (scripts/test.sh)
pytestmark = pytest.mark.serial


def test_swagger_ui_renders_every_operation_offline(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server.base + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    try:
        with sync_browser(FLAGS) as browser:
            page = browser.new_page()
            page.route("**/*", only_this_server)
            page.goto(f"{server.base}/docs")
            page.locator('.opblock-summary-path[data-path="/v1/plans"]').wait_for(timeout=30_000)
            dom = page.content()
    finally:
        server.stop()
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {
        "/v1/live-streams",
        "/v1/live-streams/{streamId}/rotate-key",
        "/v1/auth/token",
        "/v1/api-keys/{keyId}",
        "/v1/sessions/{sessionId}",
        "/v1/plans",
    } <= rendered, dom[-3000:]
    assert "OAS 3.1" in dom
    assert elsewhere == []  # no CDN, no font or script from anywhere else
