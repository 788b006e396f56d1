"""messages: the in-flight figures read ix_messages_waiting, and ix_messages_in_flight goes

ix_messages_in_flight (channel_id, status) held the scheduled, queued, sending and unknown
messages, which ix_messages_waiting (status, channel_id, queued_at) holds too: every step of a
send (scheduled → queued → sending → sent) moved an entry in both. /metrics' in-flight counts and
a paused channel's queued messages now read the waiting index, which answers them as well (its
leading status takes each state as one range), and a send moves one entry fewer at each step.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 01:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

IN_FLIGHT = "status IN ('scheduled', 'queued', 'sending', 'unknown')"


def upgrade() -> None:
    op.drop_index('ix_messages_in_flight', table_name='messages')


def downgrade() -> None:
    op.create_index('ix_messages_in_flight', 'messages', ['channel_id', 'status'],
                    sqlite_where=sa.text(IN_FLIGHT), postgresql_where=sa.text(IN_FLIGHT))
