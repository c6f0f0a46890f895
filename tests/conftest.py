"""Shared test helpers: peers that must exist in CI, and a real server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil

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
