"""Stream ID table: every accepted form and every refusal with its code."""

from __future__ import annotations

import pytest

from server.protocols.srt import RejectCode, StreamIdError, parse_streamid


@pytest.mark.parametrize(
    ("streamid", "key", "app", "extra"),
    [
        ("#!::r=live/KEY,m=publish", "KEY", "live", {}),
        ("#!::m=publish,r=live/KEY", "KEY", "live", {}),
        ("#!::r=live/KEY", "KEY", "live", {}),  # m missing = publish on this port
        ("#!::r=KEY,m=publish", "KEY", "", {}),
        ("#!::r=a/b/KEY,m=publish", "KEY", "a/b", {}),
        ("#!::h=example.com,r=live/KEY,m=publish", "KEY", "live", {"host": "example.com"}),
        ("#!::h=live/KEY,m=publish", "KEY", "live", {"host": None}),  # SRS legacy
        (
            "#!::r=live/KEY,m=publish,u=alice,s=tok",
            "KEY",
            "live",
            {"user": "alice", "session": "tok"},
        ),
        ("#!::r=live/KEY?secret=xyz,m=publish", "KEY", "live", {"params": {"secret": "xyz"}}),
        (
            "#!::r=live/KEY,m=publish,t=stream,company_x=1",
            "KEY",
            "live",
            {"params": {"company_x": "1"}},
        ),
        ("KEY", "KEY", "", {}),
        ("live/KEY", "KEY", "live", {}),
        ("/live/KEY", "KEY", "live", {}),
        ("live/KEY?token=abc", "KEY", "live", {"params": {"token": "abc"}}),
        ("publish:live/KEY", "KEY", "live", {}),
        ("publish:live/KEY:user:pass", "KEY", "live", {"user": "user", "session": "pass"}),
        ("publish:live/KEY:a=1", "KEY", "live", {"params": {"a": "1"}}),
        ("publish:KEY:u:p:a=1", "KEY", "", {"user": "u", "params": {"a": "1"}}),
        ("%23!::r=live/KEY,m=publish", "KEY", "live", {}),
        ("%23%21%3A%3Ar%3Dlive%2FKEY%2Cm%3Dpublish", "KEY", "live", {}),
        ("  #!::r=live/KEY  ", "KEY", "live", {}),
        ("#!::r=live/clé", "clé", "live", {}),
    ],
)
def test_accepted(streamid: str, key: str, app: str, extra: dict) -> None:
    info = parse_streamid(streamid)
    assert info.key == key and info.app == app and info.mode == "publish"
    for name, value in extra.items():
        assert getattr(info, name) == value


@pytest.mark.parametrize(
    "streamid", ["#!::r=live/EDGE,m=request,s=TOKEN", "%23!::r=live/EDGE,m=request,s=TOKEN"]
)
def test_request_is_playback_of_an_edge_with_a_token(streamid: str) -> None:
    info = parse_streamid(streamid)
    assert (info.mode, info.key, info.session) == ("request", "EDGE", "TOKEN")


def test_mediamtx_read_is_playback() -> None:
    info = parse_streamid("read:live/EDGE")
    assert (info.mode, info.key) == ("request", "EDGE")


@pytest.mark.parametrize(
    ("streamid", "code"),
    [
        ("#!::r=live/KEY,m=bidirectional", RejectCode.BAD_MODE),
        ("#!::r=live/KEY,m=bogus", RejectCode.BAD_MODE),
        ("#!::r=live/KEY,t=file", RejectCode.NOTSUP_MEDIA),
        ("", RejectCode.UNAUTHORIZED),
        ("   ", RejectCode.UNAUTHORIZED),
        ("#!::m=publish", RejectCode.BAD_REQUEST),
        ("#!::r=live/,m=publish", RejectCode.BAD_REQUEST),
        ("#!::r", RejectCode.BAD_REQUEST),
        ("#!:{r=live/KEY}", RejectCode.BAD_REQUEST),
        ("publish:a:b:c:d:e:f", RejectCode.BAD_REQUEST),
        ("live/", RejectCode.BAD_REQUEST),
        ("x" * 600, RejectCode.BAD_REQUEST),
    ],
)
def test_refused(streamid: str, code: int) -> None:
    with pytest.raises(StreamIdError) as info:
        parse_streamid(streamid)
    assert info.value.code == code
