"""How a refused ingest attempt is shown."""

from __future__ import annotations

from typing import cast

from control_api.schemas.ingest_failures import IngestFailureOut, Reason
from control_api.store.models import IngestFailure


def failure_out(row: IngestFailure) -> IngestFailureOut:
    return IngestFailureOut(
        at=row.at,
        protocol=row.protocol,
        remote_address=row.remote_addr,
        attempted=row.attempted,
        reason=cast(Reason, row.reason),
        detail=row.detail,
        stream_id=row.stream_id,
    )
