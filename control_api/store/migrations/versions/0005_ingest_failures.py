"""Refused publish attempts (protocol, address, what was tried, reason), kept for
diagnostics per environment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from control_api.store.models import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
        sa.Column("attempted", sa.String(300), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
        sa.Column("environment_id", sa.String(40), nullable=True),
        sa.Column("stream_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_ingest_failures_environment_id", "ingest_failures", ["environment_id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_failures_environment_id", "ingest_failures")
    op.drop_table("ingest_failures")
