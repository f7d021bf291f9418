"""call outcomes set by agents from their desktop

Revision ID: 0006_call_outcomes
Revises: 0005_users
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_call_outcomes"
down_revision = "0005_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("disposition", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("disposition_note", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("disposition_by", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("disposition_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("disposition_at")
        batch.drop_column("disposition_by")
        batch.drop_column("disposition_note")
        batch.drop_column("disposition")
