"""A node that cannot renew its lease lets its encoders go (no stream carried twice)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from control_api.nodes import ThisNode
from control_api.settings import load_settings
from control_api.store import Store
from control_api.urls import Endpoints


class DatabaseGone:
    async def heartbeat(self, *_args: object) -> None:
        raise OSError("connection refused")


@dataclass
class FakeStore:
    shared: bool = True
    nodes: DatabaseGone = field(default_factory=DatabaseGone)


@dataclass
class FakeIngest:
    streams: list[str] = field(default_factory=lambda: ["ls_1", "ls_2"])
    disconnected: list[tuple[str, bool, str]] = field(default_factory=list)

    def publishing(self) -> list[str]:
        return list(self.streams)

    async def disconnect(self, stream_id: str, *, end_session: bool, reason: str) -> bool:
        self.disconnected.append((stream_id, end_session, reason))
        self.streams.remove(stream_id)
        if stream_id == "ls_1":
            raise OSError("cannot write the session's end")  # the database is gone
        return True


def _node(shared: bool = True) -> tuple[ThisNode, FakeIngest]:
    settings = load_settings(environ={"RELAYCAST_NODE__LEASE_SECONDS": "15"})
    store = cast(Store, FakeStore(shared=shared))
    node = ThisNode(settings, store, Endpoints("h", 8080, 1935, 9000))
    ingest = FakeIngest()
    node.ingest = cast(Any, ingest)
    return node, ingest


async def test_encoders_stay_while_the_lease_runs_and_go_when_it_lapsed() -> None:
    node, ingest = _node()
    node.renewed = 100.0
    await node.tick(114.0)
    assert ingest.disconnected == []
    await node.tick(115.0)
    assert ingest.disconnected == [
        ("ls_1", True, "node lost its lease"),
        ("ls_2", True, "node lost its lease"),
    ]


async def test_a_single_process_database_never_fences() -> None:
    node, ingest = _node(shared=False)
    await node.tick(1000.0)
    assert ingest.disconnected == []
