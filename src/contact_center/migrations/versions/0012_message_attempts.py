"""message_attempts: each try at sending a message, with what the provider answered

One row per provider call for a message (and per hold by the channel's rate limit or a pause),
written in the transaction that applies the outcome: when it started and ended, the outcome
(sent, retry, failed, unknown, held), the HTTP status or provider code, the reason, and when the
next try or question is due. The timeline shows it as the message's attempt history.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'message_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('started_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=8), nullable=False),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('provider_code', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('next_attempt_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('batch_reference', sa.String(length=40), nullable=True),
        sa.CheckConstraint("outcome IN ('sent', 'retry', 'failed', 'unknown', 'held')",
                           name=op.f('ck_message_attempts_outcome_known')),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_message_attempts_message_id_messages'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_attempts')),
    )
    op.create_index('ix_message_attempts_message_id', 'message_attempts', ['message_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_attempts_message_id', table_name='message_attempts')
    op.drop_table('message_attempts')
