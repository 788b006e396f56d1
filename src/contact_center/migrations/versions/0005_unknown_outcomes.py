"""messages: the batch reference a send went out under, and whether a status is only our inference

A send whose outcome is unknown (a timeout, a crash between handing it over and recording the
answer, an unreadable answer) is never sent again before the provider has been asked about it.
Kolmeya can be asked by the reference of the request that carried the message, so each batch now
gets one of ours, kept on its messages (`batch_reference`). A failure we concluded ourselves
(`status_inferred`) can still be corrected by later evidence; one the provider stated cannot.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_reference', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('status_inferred', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_messages_batch_reference'), ['batch_reference'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_batch_reference'))
        batch_op.drop_column('status_inferred')
        batch_op.drop_column('batch_reference')
