"""The installed version, cheap to import (the CLI's --version must not load the world)."""

from __future__ import annotations

from importlib import metadata


def version() -> str:
    try:
        return metadata.version("relaycast")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0+source"
