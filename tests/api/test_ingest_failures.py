"""``GET /v1/ingest/failures`` and ``relaycast ingest failures``: who sees which refusals.

Refusals go through the real recorder (queue + background writer) into the database.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from control_api import cli
from control_api.refusals import RefusalRecorder
from control_api.schemas.ingest_failures import Reason
from control_api.store.environments import DEFAULT_ENVIRONMENT
from server.ingest.ports import IngestRefusal
from server.ingest.refusals import RefusalReason
from tests.api.conftest import Api, ApiFactory

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def refusal(
    reason: RefusalReason,
    seconds: int,
    env: str | None = None,
    stream: str | None = None,
    attempted: str = "live/abcd****",
) -> IngestRefusal:
    return IngestRefusal(
        at=T0 + timedelta(seconds=seconds),
        protocol="rtmp",
        remote="127.0.0.1:50000",
        attempted=attempted,
        reason=str(reason),
        detail=f"detail {reason}",
        environment_id=env,
        stream_id=stream,
    )


async def record(api: Api, refusals: list[IngestRefusal], keep: int = 1000) -> RefusalRecorder:
    recorder = RefusalRecorder(api.store.ingest_failures, keep)
    recorder.start()
    for item in refusals:
        recorder.refused(item)
    await recorder.flush()
    await recorder.stop()
    return recorder


async def env_id(api: Api, name: str) -> str:
    env, _ = await api.store.environments.ensure(name)
    return env.id


def test_schema_reasons_are_exactly_the_refusal_reasons() -> None:
    assert set(Reason.__args__) == {str(r) for r in RefusalReason}  # type: ignore[attr-defined]


async def test_operator_sees_own_and_untied_refusals_newest_first(api: Api) -> None:
    default = await env_id(api, DEFAULT_ENVIRONMENT)
    other = await env_id(api, "tenant")
    await record(
        api,
        [
            refusal(RefusalReason.UNKNOWN_KEY, 1),
            refusal(RefusalReason.STOPPED, 2, default, "ls_mine"),
            refusal(RefusalReason.IN_USE, 3, other, "ls_theirs"),
            refusal(RefusalReason.WRONG_APP, 4, attempted="other"),
        ],
    )
    reply = await api.call("GET", "/v1/ingest/failures")
    assert reply.status == 200, reply.text
    doc = reply.json
    assert doc["total"] == 3
    assert [f["reason"] for f in doc["failures"]] == ["wrong-app", "stream-stopped", "unknown-key"]
    first = doc["failures"][1]
    assert first == {
        "at": "2026-11-22T12:00:02Z",
        "protocol": "rtmp",
        "remoteAddress": "127.0.0.1:50000",
        "attempted": "live/abcd****",
        "reason": "stream-stopped",
        "detail": "detail stream-stopped",
        "streamId": "ls_mine",
    }


async def test_another_environment_sees_only_its_streams(api: Api) -> None:
    other = await env_id(api, "tenant")
    key = await api.new_key(env="tenant")
    await record(
        api,
        [
            refusal(RefusalReason.UNKNOWN_KEY, 1),
            refusal(RefusalReason.LIMITS, 2, other, "ls_theirs"),
            refusal(RefusalReason.STOPPED, 3, await env_id(api, DEFAULT_ENVIRONMENT), "ls_x"),
        ],
    )
    doc = (await api.call("GET", "/v1/ingest/failures", key=key)).json
    assert doc["total"] == 1
    assert [(f["reason"], f["streamId"]) for f in doc["failures"]] == [("limits", "ls_theirs")]


async def test_restricted_keys_and_strangers_are_refused(api: Api) -> None:
    restricted = await api.new_key(access="restricted")
    assert (await api.call("GET", "/v1/ingest/failures", key=restricted)).status == 403
    assert (await api.call("GET", "/v1/ingest/failures", key=None)).status == 401


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "offset=-1"])
async def test_bad_limits_are_problems(api: Api, query: str) -> None:
    reply = await api.call("GET", f"/v1/ingest/failures?{query}")
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_limit_and_offset_page_through(api: Api) -> None:
    await record(api, [refusal(RefusalReason.UNKNOWN_KEY, i) for i in range(5)])
    doc = (await api.call("GET", "/v1/ingest/failures?limit=2&offset=1")).json
    assert doc["total"] == 5
    assert [f["at"] for f in doc["failures"]] == ["2026-11-22T12:00:03Z", "2026-11-22T12:00:02Z"]


async def test_only_the_newest_are_kept(api: Api) -> None:
    await record(api, [refusal(RefusalReason.UNKNOWN_KEY, i) for i in range(30)], keep=10)
    await record(api, [refusal(RefusalReason.WRONG_APP, 100 + i) for i in range(3)], keep=10)
    doc = (await api.call("GET", "/v1/ingest/failures?limit=100")).json
    assert doc["total"] == 10
    assert doc["failures"][0]["at"] == "2026-11-22T12:01:42Z"
    assert doc["failures"][-1]["at"] == "2026-11-22T12:00:23Z"


async def test_a_full_queue_drops_and_counts_instead_of_growing(api: Api) -> None:
    recorder = RefusalRecorder(api.store.ingest_failures, 1000, bound=5)
    for i in range(8):  # not started: nothing drains the queue
        recorder.refused(refusal(RefusalReason.UNKNOWN_KEY, i))
    assert recorder.dropped == 3
    recorder.start()
    await recorder.flush()
    await recorder.stop()
    assert (await api.call("GET", "/v1/ingest/failures")).json["total"] == 5


async def test_cli_lists_every_environment(
    make_api: ApiFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = await make_api()
    other = await env_id(api, "tenant")
    await record(
        api,
        [refusal(RefusalReason.UNKNOWN_KEY, 1), refusal(RefusalReason.LIMITS, 2, other, "ls_t")],
    )
    capsys.readouterr()
    await _run_cli(["ingest", "failures", "--json", "--data-dir", str(tmp_path)])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["reason"], r["environment"]) for r in rows] == [
        ("limits", "tenant"),
        ("unknown-key", None),
    ]
    await _run_cli(["ingest", "failures", "--limit", "1", "--data-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "\tlimits\t" in lines[0] and "ls_t" in lines[0]


async def _run_cli(argv: list[str]) -> None:
    """``cli.main`` runs its own event loop: call it from a worker thread."""
    await asyncio.to_thread(cli.main, argv)


def test_cli_rejects_a_bad_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ingest", "failures", "--limit", "0"])
    assert exit_.value.code == 2
    assert "must be 1 to 10000" in capsys.readouterr().err
