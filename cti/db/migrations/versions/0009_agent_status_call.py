"""acd agent status: the call a ringing or talking agent had, so a restart knows who may still be talking

Revision ID: 0009_agent_status_call
Revises: 0008_prompt_versions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_agent_status_call"
down_revision = "0008_prompt_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acd_agent_status") as batch:
        batch.add_column(sa.Column("call", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("acd_agent_status") as batch:
        batch.drop_column("call")
