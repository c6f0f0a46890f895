"""Multistream destinations: one table of RTMP/SRT targets per live stream, removed
with their stream.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from control_api.store.models import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "environment_id", sa.String(40), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column(
            "stream_id",
            sa.String(40),
            sa.ForeignKey("live_streams.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("stream_key", sa.Text(), nullable=True),
        sa.Column("srt_passphrase", sa.String(79), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_destinations_environment_id", "destinations", ["environment_id"])
    op.create_index("ix_destinations_stream_id", "destinations", ["stream_id"])


def downgrade() -> None:
    op.drop_index("ix_destinations_stream_id", table_name="destinations")
    op.drop_index("ix_destinations_environment_id", table_name="destinations")
    op.drop_table("destinations")
