"""Alembic environment: always run online, on the connection the caller passes in."""

from __future__ import annotations

from alembic import context

from control_api.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached when someone runs bare `alembic`
    raise RuntimeError("run migrations with `relaycast migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
