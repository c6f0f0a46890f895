"""The small file that makes a recording directory recognisable after a crash.

Written before the first fragment, it says whose session the fragments are, so the
next start can finish a recording the process died under without any live state.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from .ports import FinishedRecording

MANIFEST = "recording.json"
PART_PATTERN = "part-*.mp4"


def part_name(index: int) -> str:
    return f"part-{index:03d}.mp4"


def manifest_bytes(
    stream_id: str, session_id: str, environment_id: str, started_at: datetime
) -> bytes:
    return json.dumps(
        {
            "streamId": stream_id,
            "sessionId": session_id,
            "environmentId": environment_id,
            "startedAt": started_at.isoformat(),
        }
    ).encode()


def read_recording(directory: Path) -> FinishedRecording | None:
    """The recording a directory holds, or None when it has no readable manifest."""
    try:
        doc = json.loads((directory / MANIFEST).read_text())
        return FinishedRecording(
            stream_id=str(doc["streamId"]),
            session_id=str(doc["sessionId"]),
            environment_id=str(doc["environmentId"]),
            started_at=datetime.fromisoformat(doc["startedAt"]),
            directory=directory,
            parts=tuple(sorted(directory.glob(PART_PATTERN))),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def left_behind(root: Path) -> list[FinishedRecording]:
    """Recordings still on disk under ``root/<stream>/<session>`` (a crash left them)."""
    if not root.is_dir():
        return []
    found = (read_recording(d) for d in sorted(root.glob("*/*")) if d.is_dir())
    return [r for r in found if r is not None]
