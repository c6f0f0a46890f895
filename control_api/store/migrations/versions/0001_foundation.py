"""Foundation: environments, API keys, live streams, sessions, server secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from control_api.store.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "environment_id", sa.String(40), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("cors_origins", sa.JSON(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_environment_id", "api_keys", ["environment_id"])
    op.create_table(
        "live_streams",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "environment_id", sa.String(40), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column("edge_id", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
        sa.Column("low_latency", sa.Boolean(), nullable=False),
        sa.Column("recording", sa.Boolean(), nullable=False),
        sa.Column("reconnect_window_seconds", sa.Integer(), nullable=False),
        sa.Column("playback_policy", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("srt_passphrase", sa.String(79), nullable=True),
        sa.Column("stream_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_live_streams_environment_id", "live_streams", ["environment_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "stream_id",
            sa.String(40),
            sa.ForeignKey("live_streams.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "environment_id", sa.String(40), sa.ForeignKey("environments.id"), nullable=False
        ),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("recording_media_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_sessions_stream_id", "sessions", ["stream_id"])
    op.create_index("ix_sessions_environment_id", "sessions", ["environment_id"])
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in ("server_secrets", "sessions", "live_streams", "api_keys", "environments"):
        op.drop_table(table)
