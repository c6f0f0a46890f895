"""Refused publishes: appended in batches by the recorder, read by the diagnostics API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_api.store.models import IngestFailure
from server.ingest.ports import IngestRefusal


@dataclass(frozen=True, slots=True)
class FailurePage:
    items: list[IngestFailure]
    total: int


def _row(refusal: IngestRefusal) -> IngestFailure:
    return IngestFailure(
        at=refusal.at,
        protocol=refusal.protocol[:8],
        remote_addr=refusal.remote[:64],
        attempted=refusal.attempted[:300],
        reason=refusal.reason[:32],
        detail=refusal.detail[:300],
        environment_id=refusal.environment_id,
        stream_id=refusal.stream_id,
    )


class IngestFailureRepo:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, refusals: Sequence[IngestRefusal], keep: int) -> None:
        """Append a batch, then drop all but the newest ``keep`` rows (one transaction)."""
        async with self._sessions.begin() as s:
            s.add_all([_row(r) for r in refusals])
            await s.flush()
            cutoff = await s.scalar(
                select(IngestFailure.id).order_by(IngestFailure.id.desc()).offset(keep).limit(1)
            )
            if cutoff is not None:
                await s.execute(delete(IngestFailure).where(IngestFailure.id <= cutoff))

    async def list(
        self, environment_id: str | None, include_untied: bool, limit: int, offset: int = 0
    ) -> FailurePage:
        """Newest first: the environment's own, plus untied ones when asked (operator).

        ``environment_id`` None means every row (the CLI, run by the operator).
        """
        where: ColumnElement[bool] = true()
        if environment_id is not None:
            where = IngestFailure.environment_id == environment_id
            if include_untied:
                where = or_(where, IngestFailure.environment_id.is_(None))
        async with self._sessions() as s:
            total = await s.scalar(select(func.count()).select_from(IngestFailure).where(where))
            rows = await s.scalars(
                select(IngestFailure)
                .where(where)
                .order_by(IngestFailure.id.desc())
                .limit(limit)
                .offset(offset)
            )
            return FailurePage(items=list(rows), total=int(total or 0))
