"""prompt versions: every version of every voice prompt, and which one plays

Revision ID: 0008_prompt_versions
Revises: 0007_audit_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_prompt_versions"
down_revision = "0007_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("activate_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_by", sa.String(length=120), nullable=False),
        sa.CheckConstraint("language IN ('en', 'fr')", name=op.f("ck_prompt_versions_language")),
        sa.CheckConstraint("source IN ('upload', 'tts', 'placeholder')", name=op.f("ck_prompt_versions_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_versions")),
        sa.UniqueConstraint("name", "language", "version", name="uq_prompt_versions_name_language_version"),
    )
    op.create_index(op.f("ix_prompt_versions_activate_at"), "prompt_versions", ["activate_at"], unique=False)
    op.create_table(
        "prompt_active",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("activated_by", sa.String(length=120), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "language", name=op.f("pk_prompt_active")),
    )


def downgrade() -> None:
    op.drop_table("prompt_active")
    op.drop_index(op.f("ix_prompt_versions_activate_at"), table_name="prompt_versions")
    op.drop_table("prompt_versions")
