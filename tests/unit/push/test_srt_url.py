"""Caller URL parsing for the SRT publisher (no sockets)."""

from __future__ import annotations

import pytest

from server.push import SrtUrl, parse_srt_url

SECRET = "supersecret123"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("srt://h:9000", SrtUrl("h", 9000)),
        ("SRT://h:9000/", SrtUrl("h", 9000)),
        ("srt://[::1]:9000?latency=200", SrtUrl("::1", 9000, latency_ms=200)),
        # the literal form the API hands out: '#' is not a fragment here
        ("srt://h:1?streamid=#!::r=live/k,m=publish", SrtUrl("h", 1, "#!::r=live/k,m=publish")),
        ("srt://h:1?streamid=%23!::r=live/k", SrtUrl("h", 1, "#!::r=live/k")),
        ("srt://h:1?streamid=a+b", SrtUrl("h", 1, "a+b")),
        (
            f"srt://h:1?mode=caller&passphrase={SECRET}&pbkeylen=32",
            SrtUrl("h", 1, "", SECRET, 32),
        ),
        ("srt://h:1?passphrase=&pbkeylen=", SrtUrl("h", 1)),
    ],
)
def test_parse(url: str, expected: SrtUrl) -> None:
    parsed = parse_srt_url(url)
    assert parsed == expected
    assert (parsed.streamid, parsed.passphrase) == (expected.streamid, expected.passphrase)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("rtmp://h:1", "srt://"),
        ("srt://h", "port"),
        ("srt://h:0", "port"),
        ("srt://:9000", "host"),
        ("srt://h:1/live/key", "no path"),
        ("srt://h:1?mode=listener", "caller"),
        ("srt://h:1?pkt_size=1316", "pkt_size"),
        ("srt://h:1?passphrase=short", "10 to 80"),
        ("srt://h:1?pbkeylen=20", "pbkeylen"),
        ("srt://h:1?latency=200000", "milliseconds"),
        ("srt://h:1?latency=abc", "integer"),
        ("srt://h:1?streamid=" + "x" * 513, "512"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_srt_url(url)


def test_secrets_stay_out_of_logs() -> None:
    url = parse_srt_url(f"srt://h:1?streamid=#!::r=live/KEY&passphrase={SECRET}&latency=80")
    for text in (url.redacted, repr(url)):
        assert "KEY" not in text and SECRET not in text
    assert url.redacted == "srt://h:1?streamid=***&passphrase=***&pbkeylen=16&latency=80"
    assert parse_srt_url("srt://[::1]:5").redacted == "srt://[::1]:5"
