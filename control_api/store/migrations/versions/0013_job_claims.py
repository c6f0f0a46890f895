"""Job claims: each background job runs on one node at a time (issue 22).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_claims",
        sa.Column("job", sa.String(120), primary_key=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("run", sa.String(32), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_job_claims_node", "job_claims", ["node"])


def downgrade() -> None:
    op.drop_table("job_claims")
