"""What each benchmark needs on this machine, checked before anything starts.

The benchmark installs nothing itself (it runs on operators' machines, where installing
packages is their decision), so a missing reference program must be named up front,
with the Debian package that provides it, rather than surfacing as a traceback halfway
through a 20-minute run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.servers import NGINX_RTMP_MODULE


@dataclass(frozen=True)
class Requirement:
    what: str
    package: str
    present: bool


def _program(name: str, package: str) -> Requirement:
    return Requirement(f"program `{name}`", package, shutil.which(name) is not None)


def _module(name: str, package: str) -> Requirement:
    return Requirement(
        f"Python module `{name}`", package, importlib.util.find_spec(name) is not None
    )


def _browser() -> Requirement:
    found = any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))
    return Requirement("program `chromium`", "apt: chromium", found)


def requirements(scenarios: Iterable[str]) -> list[Requirement]:
    """The requirements of the named scenario groups (``rtmp``, ``srt``, ``hls``, ...)."""
    wanted = set(scenarios)
    needs = [_module("matplotlib", "pip: matplotlib (pip install -e '.[test]')")]
    needs.append(_program("ffmpeg", "apt: ffmpeg"))
    if wanted & {"rtmp", "hls", "multistream", "play"}:
        needs.append(_program("nginx", "apt: nginx"))
        needs.append(
            Requirement(
                f"nginx RTMP module {NGINX_RTMP_MODULE}",
                "apt: libnginx-mod-rtmp",
                Path(NGINX_RTMP_MODULE).exists(),
            )
        )
    if wanted & {"srt", "multistream", "play"}:
        needs.append(_program("srt-live-transmit", "apt: srt-tools"))
    if "hls" in wanted:
        needs.append(_browser())
    if "nodes" in wanted:
        needs.append(_module("asyncpg", "pip: asyncpg (pip install -e '.[postgres]')"))
        needs.append(
            Requirement(
                "PostgreSQL URL in BENCH_PG_URL or PG_TEST_URL",
                "apt: postgresql (scripts/postgres.sh prints a URL)",
                bool(os.environ.get("BENCH_PG_URL") or os.environ.get("PG_TEST_URL")),
            )
        )
    if "whip" in wanted:
        needs.append(_module("aiortc", "pip: aiortc (pip install -e .)"))
        needs.append(_browser())
    return needs


def missing(scenarios: Iterable[str]) -> list[str]:
    """One line per missing requirement, naming the package that provides it."""
    return [
        f"missing {r.what} (install {r.package})" for r in requirements(scenarios) if not r.present
    ]
