"""Campaigns as first-class records: audience, schedule, send window, throughput, lifecycle

A campaign's messages are now stored `scheduled` and released to the dispatch queue by the
campaign while it runs. Campaigns sent before this revision were stored queued: they become
`running` (their messages go on as they were) and complete when nothing of theirs is pending.
The index on messages (campaign_id, status, id) lets the campaign release its next batch and
count its progress without reading every message.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

STATUSES = "('building', 'ready', 'running', 'paused', 'completed', 'cancelled', 'failed')"


def upgrade() -> None:
    op.execute("UPDATE campaigns SET status = 'running' WHERE status = 'sending'")
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('whatsapp_template_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('template_parameters', sa.JSON(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_campaigns_whatsapp_template_id_whatsapp_templates'),
                                    'whatsapp_templates', ['whatsapp_template_id'], ['id'], ondelete='SET NULL')
        batch_op.add_column(sa.Column('starts_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('send_window', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('per_minute', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('start_when_built', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('skip_reasons', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('cancelled', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('waiting_reason', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('started_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('finished_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(op.f('ck_campaigns_status_known'), f"status IN {STATUSES}")
    op.execute("UPDATE campaigns SET updated_at = created_at, started_at = created_at")
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=contact_center.db.UTCDateTime(timezone=True),
                              nullable=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_campaign_status', ['campaign_id', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_campaign_status')
    op.execute("UPDATE messages SET status = 'queued' WHERE status = 'scheduled'")
    op.execute("UPDATE messages SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_campaigns_status_known'), type_='check')
        batch_op.drop_constraint(op.f('fk_campaigns_whatsapp_template_id_whatsapp_templates'), type_='foreignkey')
        for column in ('template_parameters', 'whatsapp_template_id', 'updated_at', 'finished_at', 'started_at', 'error', 'waiting_reason', 'cancelled',
                       'skip_reasons', 'start_when_built', 'per_minute', 'send_window', 'starts_at', 'audience'):
            batch_op.drop_column(column)
    op.execute("UPDATE campaigns SET status = 'sending' WHERE status NOT IN ('cancelled')")
