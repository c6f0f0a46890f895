"""SRT publishers share one loop timer: no sockets, a fake transport per publisher."""

from __future__ import annotations

import asyncio
from typing import Any

from server.protocols import srt
from server.protocols.srt.packet import ControlPacket, ControlType
from server.push.srt_client import _CallerProtocol, _SharedTick


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_publishers_share_one_tick_that_goes_with_the_last() -> None:
    loop = asyncio.get_running_loop()
    pairs = []
    for _ in range(3):
        protocol = _CallerProtocol(loop)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.attach(srt.SrtConnection.caller(loop.time(), streamid="x"))
        pairs.append((protocol, transport))
    assert all(len(t.sent) == 1 for _, t in pairs)  # the induction, at once
    scheduled = getattr(loop, "_scheduled", [])
    timers = [h for h in scheduled if not h.cancelled() and "._run" in repr(h)]
    assert len(timers) == 1
    await asyncio.sleep(0.3)  # no answer: the tick re-sends every 250 ms
    for _, transport in pairs:
        kinds = {ControlPacket.decode(d).type for d in transport.sent}
        assert len(transport.sent) >= 2 and kinds == {ControlType.HANDSHAKE}
    for protocol, _ in pairs:
        protocol.connection_lost(None)
    assert loop not in _SharedTick.by_loop
