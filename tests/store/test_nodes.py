"""Nodes and their claims on streams, on both databases (issue 22)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from control_api.nodes import ThisNode
from control_api.settings import load_settings
from control_api.store import Store
from control_api.store.directory import StoreDirectory
from control_api.store.models import LiveStream, StreamSession
from control_api.store.nodes import NodeInfo
from control_api.urls import Endpoints
from tests.store.test_store import FIELDS

LEASE = 15.0


def _info(name: str, region: str = "local") -> NodeInfo:
    return NodeInfo(name, region, f"http://{name}:8080", f"rtmp://{name}:1935/live", None)


async def _stream(store: Store) -> str:
    return (await _stream_row(store)).id


async def _stream_row(store: Store) -> LiveStream:
    env, _ = await store.environments.ensure("default")
    row, _ = await store.live_streams.create(env.id, FIELDS)
    return row


async def test_heartbeat_announces_and_renews_and_leave_removes(store: Store) -> None:
    t0 = datetime.now(UTC)
    await store.nodes.heartbeat(_info("a", "eu-1"), t0, t0, LEASE)
    await store.nodes.heartbeat(_info("a", "eu-1"), t0, t0 + timedelta(seconds=10), LEASE)
    assert [n.name for n in await store.nodes.live(t0 + timedelta(seconds=20))] == ["a"]
    (node,) = await store.nodes.live(t0)
    assert (node.region, node.http_url, node.started_at) == ("eu-1", "http://a:8080", t0)
    assert await store.nodes.live(t0 + timedelta(seconds=26)) == []
    await store.nodes.leave("a")
    assert await store.nodes.live(t0) == []


async def test_one_claim_per_stream_whoever_races(store: Store) -> None:
    sid = await _stream(store)
    now = datetime.now(UTC)
    won = await asyncio.gather(
        *(store.claims.take(sid, f"n{i}", f"t{i}", now, LEASE) for i in range(6))
    )
    assert sum(won) == 1
    holder = await store.claims.holder(sid, now)
    assert holder == f"n{won.index(True)}"
    # the holder claims again (its own earlier run, or a later session): granted
    assert await store.claims.take(sid, holder, "again", now, LEASE)
    other = "n0" if holder != "n0" else "n1"
    assert not await store.claims.take(sid, other, "x", now + timedelta(seconds=14), LEASE)


async def test_a_lapsed_claim_is_taken_over_and_heartbeats_keep_it(store: Store) -> None:
    sid = await _stream(store)
    t0 = datetime.now(UTC)
    assert await store.claims.take(sid, "a", "ta", t0, LEASE)
    await store.nodes.heartbeat(_info("a"), t0, t0 + timedelta(seconds=10), LEASE)
    assert not await store.claims.take(sid, "b", "tb", t0 + timedelta(seconds=20), LEASE)
    assert await store.claims.take(sid, "b", "tb", t0 + timedelta(seconds=26), LEASE)
    assert await store.claims.holder(sid, t0 + timedelta(seconds=26)) == "b"


async def test_a_heartbeat_without_claims_renews_only_the_node(store: Store) -> None:
    """One process's database has no claims (``ThisNode`` passes ``renew_claims=False``
    there): the node's lease is renewed all the same, a claim is not."""
    sid = await _stream(store)
    t0 = datetime.now(UTC)
    assert await store.claims.take(sid, "a", "ta", t0, LEASE)
    await store.nodes.heartbeat(_info("a"), t0, t0 + timedelta(seconds=10), LEASE, False)
    later = t0 + timedelta(seconds=20)
    assert [n.name for n in await store.nodes.live(later)] == ["a"]
    assert await store.claims.holder(sid, later) is None  # lapsed: not renewed


async def test_this_node_renews_claims_only_on_a_shared_database(store: Store) -> None:
    """``ThisNode.beat``: PostgreSQL renews the node's claims with its lease; SQLite,
    where nothing claims, only the lease."""
    settings = load_settings(environ={"RELAYCAST_NODE__NAME": "a"})
    node = ThisNode(settings, store, Endpoints("h", 8080, 1935, 9000))
    sid = await _stream(store)
    t0 = datetime.now(UTC)
    lease = settings.node.lease_seconds
    assert await store.claims.take(sid, "a", "ta", t0 - timedelta(seconds=lease - 1), lease)
    await node.beat()
    later = t0 + timedelta(seconds=lease / 2)
    assert "a" in {n.name for n in await store.nodes.live(later)}
    assert await store.claims.holder(sid, later) == ("a" if store.shared else None)


async def test_the_owner_of_an_edge_id_is_the_other_live_node_holding_its_claim(
    store: Store,
) -> None:
    """The only node a proxied HLS request may go to: another, live, claim holder."""
    row = await _stream_row(store)
    sid, edge = row.id, row.edge_id
    t0 = datetime.now(UTC)
    info = NodeInfo("a", "local", "http://a:8080", None, None, internal_url="http://10.0.0.1:81")
    await store.nodes.heartbeat(info, t0, t0, LEASE)
    assert await store.nodes.owner_url(edge, "b", t0) is None  # no claim yet
    assert await store.claims.take(sid, "a", "ta", t0, LEASE)
    assert await store.nodes.owner_url(edge, "b", t0) == "http://10.0.0.1:81"
    assert await store.nodes.owner_url(edge, "a", t0) is None  # never to itself
    assert await store.nodes.owner_url("lse_other", "b", t0) is None
    assert await store.nodes.owner_url(edge, "b", t0 + timedelta(seconds=16)) is None  # dead
    # ended (no claim): its latest session's node still serves the last playlists
    await _open_session(store, sid, "ses_1", "a")
    await store.claims.release(sid, "ta")
    assert await store.nodes.owner_url(edge, "b", t0) == "http://10.0.0.1:81"
    assert await store.nodes.owner_url(edge, "a", t0) is None


async def test_release_deletes_only_the_claim_it_took(store: Store) -> None:
    sid = await _stream(store)
    now = datetime.now(UTC)
    assert await store.claims.take(sid, "a", "first", now, LEASE)
    assert await store.claims.take(sid, "a", "second", now, LEASE)
    await store.claims.release(sid, "first")  # late: the second claim stays
    assert await store.claims.holder(sid, now) == "a"
    await store.claims.release(sid, "second")
    assert await store.claims.holder(sid, now) is None
    assert await store.claims.take(sid, "b", "tb", now, LEASE)


async def _open_session(store: Store, sid: str, session_id: str, node: str | None) -> None:
    env, _ = await store.environments.ensure("default")
    await store.live_streams.update(env.id, sid, {"state": "live"})
    async with store.sessions.begin() as s:
        s.add(
            StreamSession(
                id=session_id,
                stream_id=sid,
                environment_id=env.id,
                protocol="rtmp",
                started_at=datetime.now(UTC) - timedelta(minutes=1),
                bytes_in=0,
                node=node,
            )
        )


async def test_restart_leaves_other_live_nodes_sessions_alone(store: Store) -> None:
    """Node B starting must not end node A's streams; its own previous run's and a dead
    node's are closed. One database file is one process's: SQLite closes them all."""
    env, _ = await store.environments.ensure("default")
    ids = {n: await _stream(store) for n in ("a", "b", "dead")}
    for node, sid in ids.items():
        await _open_session(store, sid, f"ses_{node}", node)
    now = datetime.now(UTC)
    await store.nodes.heartbeat(_info("a"), now, now, LEASE)
    await store.nodes.heartbeat(_info("dead"), now, now - timedelta(seconds=30), LEASE)
    assert await store.claims.take(ids["b"], "b", "old", now, LEASE)
    closed, ended = await store.reconcile_after_restart("b")
    states = {n: (await store.live_streams.get(env.id, sid)).state for n, sid in ids.items()}  # type: ignore[union-attr]
    if store.shared:
        assert (closed, ended) == (2, 2)
        assert states == {"a": "live", "b": "ended", "dead": "ended"}
        assert await store.claims.holder(ids["b"], now) is None  # its previous run's claim
    else:
        assert (closed, ended) == (3, 3)
        assert set(states.values()) == {"ended"}


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, type_: str, environment_id: str, resource: object) -> None:
        self.events.append((type_, getattr(resource, "id", "")))


async def test_a_dead_node_s_sessions_are_ended_once_by_the_survivors(store: Store) -> None:
    """Node "dead" stopped renewing its lease; "a" and "b" sweep at the same time."""
    ids = {n: await _stream(store) for n in ("a", "dead")}
    for node, sid in ids.items():
        await _open_session(store, sid, f"ses_{node}", node)
    now = datetime.now(UTC)
    await store.nodes.heartbeat(_info("a"), now, now, LEASE)
    await store.nodes.heartbeat(_info("b"), now, now, LEASE)
    await store.nodes.heartbeat(_info("dead"), now, now - timedelta(seconds=16), LEASE)
    heard = Heard()
    store.events.listeners.append(heard)
    if store.shared:  # PostgreSQL: several nodes sweep concurrently
        second = await Store.open(store.engine.url.render_as_string(hide_password=False))
        second.events.listeners.append(heard)
        try:
            results = await asyncio.gather(
                store.end_dead_nodes_sessions("a"), second.end_dead_nodes_sessions("b")
            )
        finally:
            await second.close()
    else:
        results = [await store.end_dead_nodes_sessions("a")]
    assert sorted(results) == sorted([(1, 1), (0, 0)][: len(results)])
    assert heard.events == [("stream.ended", ids["dead"])]
    env, _ = await store.environments.ensure("default")
    dead = await store.live_streams.get(env.id, ids["dead"])
    alive = await store.live_streams.get(env.id, ids["a"])
    assert dead is not None and dead.state == "ended"
    assert alive is not None and alive.state == "live"
    assert await store.end_dead_nodes_sessions("a") == (0, 0)


async def test_each_due_webhook_delivery_goes_to_one_node(store: Store) -> None:
    """Two dispatchers (nodes) take the same due rows at once: on a shared database
    each row goes to one of them, for the attempt's lease; SQLite (one process) keeps
    every row it asked for."""
    from tests.store.test_webhooks_store import DAY, _event, _setup

    env, _, _, _ = await _setup(store)
    await store.webhooks.enqueue([_event(env, n) for n in range(1, 6)], DAY)
    now = datetime.now(UTC)
    due = [d.delivery_id for d in await store.webhooks.due(now, (), (), 100)]
    assert len(due) == 10
    if not store.shared:
        assert await store.webhooks.take(due, now, 60) == set(due)
        return
    second = await Store.open(store.engine.url.render_as_string(hide_password=False))
    try:
        mine, theirs = await asyncio.gather(
            store.webhooks.take(due, now, 60), second.webhooks.take(due, now, 60)
        )
    finally:
        await second.close()
    assert not mine & theirs and mine | theirs == set(due)
    assert await store.webhooks.due(now + timedelta(seconds=30), (), (), 100) == []
    again = await store.webhooks.due(now + timedelta(seconds=61), (), (), 100)
    assert len(again) == 10  # the lease lapsed: a node that died mid-attempt is retried


async def test_a_session_handed_over_goes_on_on_the_other_node_or_ends_there(
    store: Store,
) -> None:
    """Node a's encoder left inside its reconnect window and came back on node b: b
    continues a's session (same id, bytes added up, no event); a session nobody
    continued ends, announced once, by the node that handed it over."""
    heard = Heard()
    store.events.listeners.append(heard)
    a = StoreDirectory(store.sessions, events=store.events, node="a")
    b = StoreDirectory(store.sessions, events=store.events, node="b")
    sid = await _stream(store)
    first = await a.session_opened(sid, "rtmp", "1.2.3.4", datetime.now(UTC))
    await a.stream_live(sid, datetime.now(UTC))
    await store.hand_over_session(first, 100, datetime.now(UTC))
    heard.events.clear()

    assert await b.session_opened(sid, "srt", "5.6.7.8", datetime.now(UTC)) == first
    await b.stream_live(sid, datetime.now(UTC))
    assert heard.events == []
    assert not await store.end_unclaimed_session(first, "a")  # b's now
    await b.session_closed(sid, first, datetime.now(UTC), 50, None)
    env, _ = await store.environments.ensure("default")
    row = await store.stream_sessions.get(env.id, first)
    assert row is not None and row.bytes_in == 150 and row.node == "b"

    second = await a.session_opened(sid, "rtmp", "1.2.3.4", datetime.now(UTC))
    assert second != first  # the stream had ended: a new session
    await a.stream_live(sid, datetime.now(UTC))
    await store.hand_over_session(second, 10, datetime.now(UTC))
    heard.events.clear()
    assert await store.end_unclaimed_session(second, "a")
    assert not await store.end_unclaimed_session(second, "a")
    assert heard.events == [("stream.ended", sid)]
