"""Log line formats: ``text`` (human message plus key=value fields) or ``json``.

One line per event. Media-plane lines carry stream, session and connection ids
(:mod:`server.logfields`); the formatter prints them as ``key=value`` or as JSON
members so a log pipeline can filter by stream without parsing messages.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from server.logfields import FIELDS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _value(text: str) -> str:
    """logfmt quoting: bare when safe, else a JSON string (quotes and escapes)."""
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return json.dumps(text)


def _fields(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(record.__dict__[name]) for name in FIELDS if name in record.__dict__}


class TextFormatter(logging.Formatter):
    """``2026-11-22 16:00:00,123 INFO relaycast.rtmp: message stream_id=… session_id=…``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays below the fields
        pairs = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        return f"{head} {pairs}{sep}{tail}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, the id fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()
