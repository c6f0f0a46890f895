"""Browser fixtures: Debian's Chromium driven by Playwright, against a real ``relaycast serve``.

Playwright never downloads a browser here (``playwright install`` is not run): it drives
Debian's ``chromium`` with the flags the other browser tests use (tests/chromium.py).
Without Chromium or Playwright the tests skip locally and fail under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import Studio
from tests.chromium import sync_browser
from tests.interop.conftest import Relaycast, launch_relaycast, peers  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def relaycast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relaycast]:
    """One server for the module; webhooks and URL imports may target the test's own
    servers on 127.0.0.1."""
    env = {
        "RELAYCAST_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
        "RELAYCAST_MEDIA__ALLOW_PRIVATE_IMPORT_TARGETS": "true",
    }
    running = launch_relaycast(tmp_path_factory.mktemp("relaycast"), env)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every page's screenshot goes (printed, so a person can look at them)."""
    wanted = os.environ.get("STUDIO_SCREENSHOTS")
    directory = Path(wanted) if wanted else tmp_path_factory.mktemp("studio-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nstudio screenshots: {directory}")
    return directory


@pytest.fixture
def studio(browser: Any, relaycast: Relaycast, screenshots: Path) -> Iterator[Studio]:
    """A fresh tab on the studio's sign-in page; the test fails on any console error it logged."""
    opened = Studio.open(browser, relaycast.server.base, screenshots)
    try:
        yield opened
    finally:
        opened.close()
    assert opened.errors == []
