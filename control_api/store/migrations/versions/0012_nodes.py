"""Nodes: several processes or machines share one database (issue 22).

``nodes`` holds each node's public URLs and heartbeat; ``stream_claims`` is the
one-publisher-per-stream rule across nodes, kept by the primary key; a session
records the node its encoder reached.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("http_url", sa.Text(), nullable=False),
        sa.Column("rtmp_url", sa.Text(), nullable=True),
        sa.Column("srt_url", sa.Text(), nullable=True),
        sa.Column("rtmps_url", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "stream_claims",
        sa.Column(
            "stream_id",
            sa.String(40),
            sa.ForeignKey("live_streams.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_nodes_lease_expires_at", "nodes", ["lease_expires_at"])
    op.create_index("ix_stream_claims_node", "stream_claims", ["node"])
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("node", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("node")
    op.drop_table("stream_claims")
    op.drop_table("nodes")
