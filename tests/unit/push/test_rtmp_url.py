"""Publish URL parsing for the RTMP(S) client (no sockets)."""

from __future__ import annotations

import pytest

from server.push import parse_rtmp_url


@pytest.mark.parametrize(
    ("url", "host", "port", "app", "name", "tc_url"),
    [
        ("rtmp://h/live/KEY", "h", 1935, "live", "KEY", "rtmp://h/live"),
        ("rtmp://h:1936/live/KEY", "h", 1936, "live", "KEY", "rtmp://h:1936/live"),
        ("rtmps://h/app/KEY", "h", 443, "app", "KEY", "rtmps://h/app"),
        ("RTMPS://h:8443/app/KEY", "h", 8443, "app", "KEY", "rtmps://h:8443/app"),
        ("rtmp://h/live/KEY?token=x", "h", 1935, "live", "KEY?token=x", "rtmp://h/live"),
        ("rtmp://h/app/_definst_/KEY", "h", 1935, "app/_definst_", "KEY", "rtmp://h/app/_definst_"),
        ("rtmp://[::1]:1935/live/KEY", "::1", 1935, "live", "KEY", "rtmp://[::1]:1935/live"),
        ("rtmp://u:p@h/live/KEY", "h", 1935, "live", "KEY", "rtmp://h/live"),
    ],
)
def test_parse(url: str, host: str, port: int, app: str, name: str, tc_url: str) -> None:
    parsed = parse_rtmp_url(url)
    assert (parsed.host, parsed.port, parsed.app, parsed.stream_name) == (host, port, app, name)
    assert parsed.tc_url == tc_url
    assert parsed.tls == url.lower().startswith("rtmps")


def test_the_key_stays_out_of_logs() -> None:
    parsed = parse_rtmp_url("rtmp://h/live/secret-key")
    assert "secret-key" not in repr(parsed)
    assert parsed.redacted == "rtmp://h/live/***"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/live/KEY", "scheme"),
        ("rtmp:///live/KEY", "no host"),
        ("rtmp://h/live", "app/stream-key"),
        ("rtmp://h/", "app/stream-key"),
        ("rtmp://h:99999/live/KEY", "port"),
    ],
)
def test_invalid_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rtmp_url(url)
