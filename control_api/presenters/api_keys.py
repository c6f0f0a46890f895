"""How an API key is shown (its secret only once, when it is created)."""

from __future__ import annotations

from control_api.schemas.api_keys import ApiKeyOut
from control_api.store.models import ApiKey


def key_out(row: ApiKey, secret: str | None = None) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=row.id,
        name=row.name,
        access=row.access,
        cors_origins=list(row.cors_origins),
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        key=secret,
    )
