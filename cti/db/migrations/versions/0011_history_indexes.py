"""calls, tickets, recordings: indexes on (caller_number, newest first), so the screen pop and the ACD's
preferred agent find a caller's history without walking every row; recordings.ticket_id, so the voicemail
recovery finds the messages not filed yet without walking every voicemail

Revision ID: 0011_history_indexes
Revises: 0010_calls_ended_at_index
"""

from __future__ import annotations

from alembic import op

revision = "0011_history_indexes"
down_revision = "0010_calls_ended_at_index"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_calls_caller_number_started_at", "calls", ["caller_number", "started_at"]),
    ("ix_tickets_caller_number_created_at", "tickets", ["caller_number", "created_at"]),
    ("ix_recordings_caller_number_created_at", "recordings", ["caller_number", "created_at"]),
    ("ix_recordings_ticket_id", "recordings", ["ticket_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
