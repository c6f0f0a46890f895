"""Background jobs held by one node at a time: a claim row per job (issue 22).

A job is named by what it works on (``probe:<media id>``, ``import:<task id>``,
``recordings:<node>``, ``sweep:media``). ``INSERT … ON CONFLICT DO UPDATE … WHERE``
takes a free job, or one whose holder's lease lapsed (a dead node), or one this
node's previous run left (node names are unique among live processes, so a claim
under our name from another run is a dead process's) — in one statement: racing
nodes cannot both get it. The node's heartbeat renews its claims with its lease.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.store.models import JobClaim
from control_api.store.nodes import _upsert


class JobRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str) -> None:
        self._sessions = sessions
        self._insert = _upsert(dialect)

    async def take(
        self, job: str, node: str, run: str, now: datetime, lease: float, again: bool = False
    ) -> bool:
        """True when this run now holds ``job``; False while another live process does,
        and while this run does unless ``again`` (a job is not started twice; a
        singleton this run leads is kept)."""
        values = {
            "node": node,
            "run": run,
            "claimed_at": now,
            "lease_expires_at": now + timedelta(seconds=lease),
        }
        table = JobClaim.__table__
        lapsed = table.c.lease_expires_at <= now
        mine = table.c.node == node
        if not again:
            mine = mine & (table.c.run != run)
        statement = (
            self._insert(JobClaim)
            .values(job=job, **values)
            .on_conflict_do_update(index_elements=["job"], set_=values, where=lapsed | mine)
            .returning(table.c.run)
        )
        async with self._sessions.begin() as s:
            holder: str | None = await s.scalar(statement)
        return holder == run

    async def release(self, job: str, run: str) -> None:
        async with self._sessions.begin() as s:
            await s.execute(delete(JobClaim).where(JobClaim.job == job, JobClaim.run == run))

    async def lapsed(self, prefix: str, now: datetime) -> list[str]:
        """Jobs named ``<prefix>…`` whose holder died: another node may take them."""
        async with self._sessions() as s:
            rows = await s.scalars(
                select(JobClaim.job).where(
                    JobClaim.job.startswith(prefix, autoescape=True),
                    JobClaim.lease_expires_at <= now,
                )
            )
            return list(rows)
