"""VOD playback of media items: playback policy and the seekable MP4 (issue 15).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.add_column(
            sa.Column("playback_policy", sa.String(16), nullable=False, server_default="private")
        )
        batch.add_column(sa.Column("mp4_path", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as batch:
        batch.drop_column("mp4_path")
        batch.drop_column("playback_policy")
