"""Peer-supplied text cannot forge a server log line (issue #13, item 16).

A real ``relaycast serve`` is sent an RTMP connect whose app name carries a newline
and a fake record, and an SRT handshake whose stream ID carries NUL bytes; the
refusals are logged with that text escaped, on the refusal's own line.
"""

from __future__ import annotations

import pytest

from server.protocols import srt
from tests.interop.conftest import BareRtmpPublisher, Relaycast, wait_for
from tests.interop.rawpeers import srt_call

pytestmark = pytest.mark.interop

FORGED = "INFO forged"  # short enough that the refusal shows the app unmasked


def _forged_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith(FORGED)]


def test_a_newline_in_an_rtmp_app_name_does_not_forge_a_line(relaycast: Relaycast) -> None:
    app = f"x\n{FORGED}"
    publisher = BareRtmpPublisher(relaycast.rtmp_url, "anykey", timeout=5.0, app=app)
    try:
        publisher.publish()
    except (TimeoutError, ConnectionError):
        pass  # refused at connect: the server may hang up before publish is answered
    finally:
        publisher.close()
    wait_for(relaycast.log, lambda log: "refused rtmp publisher" in log, 10, "the refusal")
    log = relaycast.log()
    assert not _forged_lines(log), log[-2000:]
    assert f"x\\n{FORGED}" in log, log[-2000:]


def test_nul_bytes_in_an_srt_stream_id_are_escaped_in_the_log(relaycast: Relaycast) -> None:
    url = relaycast.server.srt_url
    assert url, relaycast.log()
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    event = srt_call(host, int(port), "k\x00\x00y-no-such-key")
    assert isinstance(event, srt.Rejected)
    wait_for(relaycast.log, lambda log: "k\\x00\\x00" in log, 10, "the escaped stream ID")
    assert "\x00" not in relaycast.log()
