"""Shared test helpers: peers that must exist in CI, and a real server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest


def require_program(name: str) -> str:
    """Path of a peer program; missing fails under CI (never a silent skip), skips locally."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/install-peers.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module", params=["default", "pure"])
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test module as imported (compiled when built) and again on the pure-Python
    twins of the accelerated modules (tests/accel_twins.py). Module scope: one swap per
    module and run, and hypothesis allows it."""
    from tests.accel_twins import implementation as run_as

    with pytest.MonkeyPatch.context() as monkeypatch:
        yield run_as(request, monkeypatch)
