"""Viewers: a session keeps its peak concurrent viewers and viewer-seconds (issue 18).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("peak_viewers", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("viewer_seconds", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("viewer_seconds")
        batch.drop_column("peak_viewers")
