"""/docs rendered by a real headless Chromium, with no network but this server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.chromium import FLAGS
from tests.conftest import require_program
from tests.serverproc import start_server

# disk- or timing-heavy: runs alone after the parallel phase (scripts/test.sh)
pytestmark = pytest.mark.serial

CHROMIUM_FLAGS = [*FLAGS, "--virtual-time-budget=10000"]


def test_swagger_ui_renders_every_operation_offline(tmp_path: Path) -> None:
    chromium = require_program("chromium")
    server = start_server(tmp_path / "data")
    try:
        dom = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                "--dump-dom",
                f"{server.base}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=90,
        ).stdout
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
