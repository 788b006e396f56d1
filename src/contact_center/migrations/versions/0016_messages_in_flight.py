"""An index of the messages still in flight, by channel and state, for /metrics

Holds only the messages scheduled, queued, sending or unknown (a partial index): a scrape counts
them by channel from the index alone, however many delivered messages the table holds, and a
delivery report or a read (sent → delivered → read) writes no entry in it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

IN_FLIGHT = sa.text("status IN ('scheduled', 'queued', 'sending', 'unknown')")


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_in_flight', ['channel_id', 'status'], unique=False,
                              sqlite_where=IN_FLIGHT, postgresql_where=IN_FLIGHT)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_in_flight')
