"""messages: status indexes only for the messages that need them

Every status a provider reports rewrote a message's entries in two indexes holding every message:
(status, queued_at) and (campaign_id, status, id). Measured on the WhatsApp status benchmark, they
were a third of the work of applying a status. Now (status, queued_at) holds only what is not
final (scheduled, queued, sending, unknown, sent), which is all that the sweeper, the status
checks and the reconciliations look for (their queries state the same condition, as SQLite uses a
partial index only for its own words): a delivered message leaves it, and its read and played
reports write in no status index. (campaign_id, status, id) holds only campaign messages: every
query by it names a campaign. /metrics no longer counts all messages by state through the first
(metrics/database.py reads the reports' roll-up).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

WAITING = "status IN ('scheduled', 'queued', 'sending', 'unknown', 'sent')"
OF_A_CAMPAIGN = "campaign_id IS NOT NULL"


def _where(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.drop_index('ix_messages_status_queued_at', table_name='messages')
    op.create_index('ix_messages_waiting', 'messages', ['status', 'channel_id', 'queued_at'], **_where(WAITING))
    op.drop_index('ix_messages_campaign_status', table_name='messages')
    op.create_index('ix_messages_campaign_status', 'messages', ['campaign_id', 'status', 'id'],
                    **_where(OF_A_CAMPAIGN))


def downgrade() -> None:
    op.drop_index('ix_messages_campaign_status', table_name='messages')
    op.create_index('ix_messages_campaign_status', 'messages', ['campaign_id', 'status', 'id'])
    op.drop_index('ix_messages_waiting', table_name='messages')
    op.create_index('ix_messages_status_queued_at', 'messages', ['status', 'queued_at'])
