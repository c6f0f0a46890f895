"""Media library: folders, tags, media items, tus uploads and tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from control_api.store.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _environment() -> sa.Column[str]:
    return sa.Column(
        "environment_id", sa.String(40), sa.ForeignKey("environments.id"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.String(40), primary_key=True),
        _environment(),
        sa.Column("parent_id", sa.String(40), sa.ForeignKey("folders.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_folders_environment_id", "folders", ["environment_id"])
    op.create_index("ix_folders_parent_id", "folders", ["parent_id"])
    op.create_table(
        "tags",
        sa.Column("id", sa.String(40), primary_key=True),
        _environment(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_tags_environment_name"),
    )
    op.create_index("ix_tags_environment_id", "tags", ["environment_id"])
    op.create_table(
        "media",
        sa.Column("id", sa.String(40), primary_key=True),
        _environment(),
        sa.Column(
            "folder_id",
            sa.String(40),
            sa.ForeignKey("folders.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("container", sa.String(64), nullable=True),
        sa.Column("video", sa.JSON(), nullable=True),
        sa.Column("audio", sa.JSON(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_media_environment_id", "media", ["environment_id"])
    op.create_index("ix_media_folder_id", "media", ["folder_id"])
    op.create_table(
        "media_tags",
        sa.Column(
            "media_id",
            sa.String(40),
            sa.ForeignKey("media.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id", sa.String(40), sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_media_tags_tag_id", "media_tags", ["tag_id"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(40), primary_key=True),
        _environment(),
        sa.Column("media_id", sa.String(40), nullable=False, unique=True),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("metadata_header", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("folder_id", sa.String(40), nullable=True),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_uploads_environment_id", "uploads", ["environment_id"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(40), primary_key=True),
        _environment(),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_tasks_environment_id", "tasks", ["environment_id"])


def downgrade() -> None:
    for table in ("tasks", "uploads", "media_tags", "media", "tags", "folders"):
        op.drop_table(table)
