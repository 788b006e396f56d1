"""WhatsApp window reminder: a conversation remembers which window it was reminded for

`reminded_window_at` holds the `window_closes_at` of the window a reminder was sent for: the
reminder job claims a window by setting it with a conditional UPDATE, so two runs or two workers
never remind the same window twice, and a new customer message (a new window) is remindable again.
The index on `window_closes_at` lets the job find the windows about to close without a scan.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminded_window_at', contact_center.db.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_window_closes_at'), ['window_closes_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_window_closes_at'))
        batch_op.drop_column('reminded_window_at')
