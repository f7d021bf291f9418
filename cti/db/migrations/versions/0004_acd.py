"""acd: agents, queues, agent status, queued calls

Revision ID: 0004_acd
Revises: 0003
Create Date: 2026-11-23 12:19:43.360508
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_acd"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acd_agents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("team", sa.String(length=80), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acd_agents")),
    )
    op.create_table(
        "acd_queues",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_acd_queues")),
    )
    op.create_table(
        "acd_agent_status",
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=True),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["acd_agents.id"], name=op.f("fk_acd_agent_status_agent_id_acd_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_acd_agent_status")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("agent_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("wait_s", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("talk_s", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("talk_s")
        batch_op.drop_column("wait_s")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("agent_id")
        batch_op.drop_column("queue")

    op.drop_table("acd_agent_status")
    op.drop_table("acd_queues")
    op.drop_table("acd_agents")
