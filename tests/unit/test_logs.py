"""Log lines: text (message + key=value ids) and JSON, with media-plane ids on each line."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from control_api.logs import JsonFormatter, TextFormatter, formatter
from server.logfields import MediaLog, media_fields, new_connection_id


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> tuple[logging.Logger, Capture]:
    logger = logging.getLogger(f"relaycast.test.{new_connection_id('t')}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = Capture()
    logger.addHandler(handler)
    return logger, handler


def test_media_log_puts_all_three_ids_on_every_line(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    log = MediaLog(logger, "rtmp-7")
    log.info("handshake done")
    log.bind("ls_1", "ss_9")
    log.warning("bad tag: %s", "x")
    text = TextFormatter()
    first, second = (text.format(r) for r in handler.records)
    assert first.endswith("handshake done stream_id=- session_id=- connection_id=rtmp-7")
    assert second.endswith("bad tag: x stream_id=ls_1 session_id=ss_9 connection_id=rtmp-7")


def test_an_explicit_extra_wins_over_the_bound_ids(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    log = MediaLog(logger, "rtmp-1")
    log.info("x", extra={"stream_id": "ls_2"})
    assert handler.records[0].__dict__["stream_id"] == "ls_2"
    assert handler.records[0].__dict__["connection_id"] == "rtmp-1"


def test_text_lines_without_ids_keep_the_classic_shape(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    logger.info("stopping")
    line = TextFormatter().format(handler.records[0])
    assert line.endswith(f"INFO {logger.name}: stopping")
    assert "=" not in line.split(": ", 1)[1]


def test_text_values_with_spaces_or_quotes_are_quoted(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    logger.info("m", extra=media_fields("a b", 'q"x'))
    line = TextFormatter().format(handler.records[0])
    assert line.endswith('m stream_id="a b" session_id="q\\"x" connection_id=-')


def test_a_traceback_stays_below_the_line_and_its_ids(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra=media_fields("ls_1"))
    first, *rest = TextFormatter().format(handler.records[0]).splitlines()
    assert first.endswith("failed stream_id=ls_1 session_id=- connection_id=-")
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: boom"


def test_json_lines_are_one_object_each(captured: tuple[logging.Logger, Capture]) -> None:
    logger, handler = captured
    MediaLog(logger, "rtmp-3").info("line\nwith a newline %d", 5)
    try:
        raise RuntimeError("bad")
    except RuntimeError:
        logger.error("plain", exc_info=sys.exc_info())
    lines = [JsonFormatter().format(r) for r in handler.records]
    assert all("\n" not in line for line in lines)
    media, plain = (json.loads(line) for line in lines)
    assert media["msg"] == "line\nwith a newline 5"
    assert media["level"] == "info" and media["logger"] == logger.name
    assert (media["stream_id"], media["session_id"], media["connection_id"]) == ("-", "-", "rtmp-3")
    assert media["time"].endswith("+00:00")
    assert "stream_id" not in plain and "RuntimeError: bad" in plain["exc"]


def test_connection_ids_are_unique_and_name_the_protocol() -> None:
    ids = {new_connection_id("rtmp") for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("rtmp-") for i in ids)


def test_formatter_by_setting() -> None:
    assert isinstance(formatter("json"), JsonFormatter)
    assert isinstance(formatter("text"), TextFormatter)


FORGED = "x\nINFO forged\r\x00\x1b[2K"


def test_peer_text_in_a_message_cannot_start_a_line_of_its_own(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    logger.warning("refused publisher (%s): unknown application", FORGED, extra=media_fields())
    line = TextFormatter().format(handler.records[0])
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\x1b" not in line
    assert "(x\\nINFO forged\\r\\x00\\x1b[2K): unknown application stream_id=-" in line


def test_field_values_with_control_characters_are_quoted_and_escaped(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    logger.info("m", extra=media_fields("a\x00b", "c\rd", "e\u2028f"))
    line = TextFormatter().format(handler.records[0])
    assert line.endswith('m stream_id="a\\u0000b" session_id="c\\rd" connection_id="e\\u2028f"'), (
        line
    )


def test_an_exception_message_stays_on_its_line_below_the_record(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    try:
        try:
            raise KeyError("inner\n" + "INFO forged too")
        except KeyError as inner:
            raise ValueError(f"bad app {FORGED!s}") from inner
    except ValueError:
        logger.exception("failed")
    lines = TextFormatter().format(handler.records[0]).splitlines()
    assert not [line for line in lines if line.startswith("INFO forged")], lines
    assert lines[-1] == "ValueError: bad app x\\nINFO forged\\r\\x00\\x1b[2K"
    assert "KeyError: 'inner\\nINFO forged too'" in lines


def test_json_lines_escape_every_line_breaker_and_keep_the_text(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured
    text = "a\u2028b\u2029c\x85d\x00e\rf\ng"
    logger.info("streamid %s", text, extra=media_fields("ls\u2028x"))
    line = JsonFormatter().format(handler.records[0])
    assert line.isprintable(), line
    doc = json.loads(line)
    assert doc["msg"] == f"streamid {text}" and doc["stream_id"] == "ls\u2028x"
