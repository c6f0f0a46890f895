"""The ingest manager asks its claims port before opening a stream (several nodes)."""

from __future__ import annotations

import asyncio

import pytest

from server.bus import Registry
from server.ingest.manager import IngestManager
from server.ingest.refusals import RefusalReason, Refused
from server.settings import IngestSettings
from tests.unit.ingest.test_manager import Clock, FakeDirectory, FakePublisher, grant, settle


class FakeClaims:
    """Another node holds the streams in ``elsewhere``; ``gate`` holds ``take`` open."""

    def __init__(self, elsewhere: set[str] | None = None) -> None:
        self.elsewhere = elsewhere or set()
        self.log: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None

    async def take(self, stream_id: str) -> bool:
        self.log.append(("take", stream_id))
        if self.gate is not None:
            await self.gate.wait()
        return stream_id not in self.elsewhere

    def release(self, stream_id: str) -> None:
        self.log.append(("release", stream_id))


def make(claims: FakeClaims) -> tuple[IngestManager, FakeDirectory]:
    directory = FakeDirectory({"sk_good": grant(window=0)})
    manager = IngestManager(
        directory,
        Registry(),
        IngestSettings(takeover_silence_seconds=3),
        Clock(),
        claims=claims,
    )
    return manager, directory


async def test_a_stream_held_by_another_node_is_refused_as_in_use() -> None:
    claims = FakeClaims({"ls_1"})
    manager, directory = make(claims)
    with pytest.raises(Refused) as refused:
        await manager.claim("sk_good", FakePublisher())
    assert refused.value.reason is RefusalReason.IN_USE
    assert str(refused.value) == "stream key already in use"
    assert directory.log == [] and manager.registry.get("ls_1") is None
    assert manager.refusals.counts == {"rtmp:key-in-use": 1}


async def test_the_claim_is_released_when_the_session_ends() -> None:
    claims = FakeClaims()
    manager, directory = make(claims)
    claim = await manager.claim("sk_good", FakePublisher())
    manager.release(claim, "gone")
    await settle()
    assert claims.log == [("take", "ls_1"), ("release", "ls_1")]
    assert directory.log[-1][0] == "closed"


async def test_two_local_publishers_racing_the_claim_open_one_session() -> None:
    claims = FakeClaims()
    claims.gate = asyncio.Event()
    manager, directory = make(claims)
    first = asyncio.ensure_future(manager.claim("sk_good", FakePublisher(remote="a")))
    second = asyncio.ensure_future(manager.claim("sk_good", FakePublisher(remote="b")))
    await settle()
    claims.gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    refused = [r for r in results if isinstance(r, Refused)]
    assert len(refused) == 1 and refused[0].reason is RefusalReason.IN_USE
    assert [entry for entry in directory.log if entry[0] == "opened"] == [("opened", "ls_1")]


async def test_another_node_s_newcomer_gets_the_stream_only_from_a_silent_or_gone_publisher() -> (
    None
):
    manager, _ = make(FakeClaims())
    clock = manager.clock
    assert isinstance(clock, Clock)
    assert manager.gives_way("ls_1")  # not here at all
    claim = await manager.claim("sk_good", FakePublisher())
    claim.received(100, clock.now)
    assert not manager.gives_way("ls_1")
    clock.now += 2.9
    assert not manager.gives_way("ls_1")
    clock.now += 0.1  # IngestSettings(takeover_silence_seconds=3)
    assert manager.gives_way("ls_1")
    claim.received(100, clock.now)
    assert not manager.gives_way("ls_1")
