"""Log line formats: ``text`` (human message plus key=value fields) or ``json``.

One line per event. Media-plane lines carry stream, session and connection ids
(:mod:`server.logfields`); the formatter prints them as ``key=value`` or as JSON
members so a log pipeline can filter by stream without parsing messages.

Messages quote what peers send (RTMP app names, SRT stream IDs, HTTP paths). A
newline in such text would start a line of its own that reads like a record from
the server, and a NUL or terminal escape can hide or rewrite what an operator
sees. So the formatters escape control characters in everything they print, here,
once, rather than trusting every call site to remember.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from types import TracebackType

from server.logfields import FIELDS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUOTED = ' "=\\'
# Line and paragraph separators and C1 controls (NEL among them) that json.dumps
# leaves raw with ensure_ascii=False: some viewers break lines on them.
_JSON_RAW = {c: f"\\u{c:04x}" for c in [*range(0x7F, 0xA0), 0x2028, 0x2029]}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _escape_char(char: str) -> str:
    return repr(char)[1:-1]


def printable(text: str) -> str:
    """``text`` with every non-printable character written as a Python escape (``\\n``,
    ``\\x00``, ``\\u2028``); printable text, the common case, comes back as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _value(text: str) -> str:
    """logfmt quoting: bare when safe, else a JSON string (quotes and escapes)."""
    if text and text.isprintable() and not any(c in text for c in _QUOTED):
        return text
    return json.dumps(text)


def _fields(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(record.__dict__[name]) for name in FIELDS if name in record.__dict__}


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and all(exc is not e for e in seen):
        seen.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return seen


def safe_traceback(text: str, exc: BaseException | None) -> str:
    """A traceback whose exception messages stay on their ``Type: message`` line.

    The frames are the server's own code; the messages may quote a peer, so their
    newlines are escaped (found by formatting each exception of the chain alone),
    and control characters are escaped on every line.
    """
    for link in _chain(exc):
        alone = "".join(traceback.format_exception_only(type(link), link)).rstrip("\n")
        if "\n" in alone:
            text = text.replace(alone, printable(alone))
    return "\n".join(printable(line) for line in text.split("\n"))


class TextFormatter(logging.Formatter):
    """``2026-11-22 16:00:00,123 INFO relaycast.rtmp: message stream_id=… session_id=…``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, ei: ExcInfo | tuple[None, None, None]) -> str:
        return safe_traceback(super().formatException(ei), ei[1])

    def format(self, record: logging.LogRecord) -> str:
        """Like :meth:`logging.Formatter.format`, with the ids after the message and
        everything escaped; a traceback another handler cached is not trusted as is."""
        record.message = printable(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + safe_traceback(record.exc_text, None)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, the id fields, exc.

    JSON strings escape C0 controls (CR, LF, NUL) already; the few line breakers it
    leaves raw are escaped too, so every record is one physical line in any viewer.
    """

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
        return json.dumps(doc, ensure_ascii=False, default=str).translate(_JSON_RAW)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()
