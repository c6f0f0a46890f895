"""Recordings: a media item says which stream and session it recorded (issue 15).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(sa.Column("stream_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("session_id", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("session_id")
        batch.drop_column("stream_id")
