"""Channels: live streams fed by a media queue, their schedule and playout state (issue 16).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("live_streams") as batch:
        batch.add_column(
            sa.Column("source", sa.String(8), nullable=False, server_default="encoder")
        )
        batch.add_column(sa.Column("loop", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("scheduled_start", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("scheduled_end", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("schedule_repeat", sa.String(8), nullable=False, server_default="none")
        )
        batch.add_column(sa.Column("profile", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("playout_on", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("playout_window_start", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("playout_item_id", sa.String(40), nullable=True))
        batch.add_column(
            sa.Column("playout_position", sa.Float(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("playout_loops", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("playout_saved_at", sa.DateTime(), nullable=True))
    op.create_table(
        "queue_items",
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
        sa.Column(
            "media_id",
            sa.String(40),
            sa.ForeignKey("media.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_queue_items_stream_position", "queue_items", ["stream_id", "position"])
    op.create_index("ix_queue_items_media_id", "queue_items", ["media_id"])
    op.create_index("ix_queue_items_environment_id", "queue_items", ["environment_id"])


def downgrade() -> None:
    op.drop_table("queue_items")
    with op.batch_alter_table("live_streams") as batch:
        for column in (
            "playout_saved_at",
            "playout_loops",
            "playout_position",
            "playout_item_id",
            "playout_window_start",
            "playout_on",
            "profile",
            "schedule_repeat",
            "scheduled_end",
            "scheduled_start",
            "loop",
            "source",
        ):
            batch.drop_column(column)
