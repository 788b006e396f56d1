"""Indexes for the reports: each report reads index pages only (reports/models.py says which)

Partial on messages where a report reads only outbound, inbound or operators' messages, so a
customer's reply writes one entry, at the index's end, and an operator's message one more.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


INDEXES = (
    ("ix_messages_report_out", "messages", ["created_at", "channel_id", "status", "campaign_id", "author_id"],
     _partial("direction = 'out'")),
    ("ix_messages_report_in", "messages", ["created_at", "conversation_id", "in_reply_to_id"],
     _partial("direction = 'in'")),
    ("ix_messages_report_operator", "messages", ["created_at", "author_id", "conversation_id", "channel_id"],
     _partial("author_id IS NOT NULL")),
    ("ix_conversations_created", "conversations", ["created_at", "channel_id"], {}),
    ("ix_conversation_events_kind_at", "conversation_events", ["kind", "at", "conversation_id", "actor_id"], {}),
    ("ix_audit_log_action_at", "audit_log", ["action", "at"], {}),
)


def upgrade() -> None:
    for name, table, columns, options in INDEXES:
        op.create_index(name, table, columns, unique=False, **options)


def downgrade() -> None:
    for name, table, _columns, _options in reversed(INDEXES):
        op.drop_index(name, table_name=table)
