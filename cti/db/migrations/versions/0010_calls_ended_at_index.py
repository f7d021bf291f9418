"""calls: an index on ended_at, so the wallboard reads the calls that ended lately and the open ones, not the day

Revision ID: 0010_calls_ended_at_index
Revises: 0009_agent_status_call
"""

from __future__ import annotations

from alembic import op

revision = "0010_calls_ended_at_index"
down_revision = "0009_agent_status_call"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_calls_ended_at"), "calls", ["ended_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_ended_at"), table_name="calls")
