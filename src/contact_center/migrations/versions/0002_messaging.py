"""channels, conversations, messages, webhook events, templates, campaigns, audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:46:02.777589
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('credentials', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('webhook_secret', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('sms', 'whatsapp')", name=op.f('ck_channels_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('name', name=op.f('uq_channels_name')),
    sa.UniqueConstraint('webhook_secret', name=op.f('uq_channels_webhook_secret'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_type', sa.String(length=32), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_log_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('phone_key', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('unread_count', sa.Integer(), nullable=False),
    sa.Column('last_activity_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_inbound_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('new', 'assigned', 'done')", name=op.f('ck_conversations_status_known')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_conversations_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_conversations_channel_id_channels')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversations_contact_id_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations')),
    sa.UniqueConstraint('channel_id', 'phone_key', name=op.f('uq_conversations_channel_id_phone_key'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_assignee_id'), ['assignee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversations_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_conversations_status_last_activity', ['status', 'last_activity_at'], unique=False)

    op.create_table('templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_templates_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_templates_name'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('body_template', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_campaigns_channel_id_channels')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_campaigns_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_campaigns_template_id_templates'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=3), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('provider_message_id', sa.String(length=64), nullable=True),
    sa.Column('provider_request_id', sa.String(length=64), nullable=True),
    sa.Column('provider_status_code', sa.Integer(), nullable=True),
    sa.Column('encoding', sa.String(length=8), nullable=True),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('in_reply_to_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('queued_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('read_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("direction IN ('in', 'out')", name=op.f('ck_messages_direction_known')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_messages_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_messages_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_messages_channel_id_channels')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_messages_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations')),
    sa.ForeignKeyConstraint(['in_reply_to_id'], ['messages.id'], name=op.f('fk_messages_in_reply_to_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('channel_id', 'provider_message_id', name=op.f('uq_messages_channel_id_provider_message_id')),
    sa.UniqueConstraint('reference', name=op.f('uq_messages_reference'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index('ix_messages_contact_created', ['contact_id', 'created_at'], unique=False)
        batch_op.create_index('ix_messages_conversation_created', ['conversation_id', 'created_at'], unique=False)
        batch_op.create_index('ix_messages_status_queued_at', ['status', 'queued_at'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('match_reference', sa.String(length=64), nullable=True),
    sa.Column('match_provider_id', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('received_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('handled_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_webhook_events_channel_id_channels'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_webhook_events_message_id_messages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_webhook_events_source_external_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_match_provider_id'), ['match_provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_events_match_reference'), ['match_reference'], unique=False)
        batch_op.create_index('ix_webhook_events_pending', ['outcome', 'received_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_pending')
        batch_op.drop_index(batch_op.f('ix_webhook_events_match_reference'))
        batch_op.drop_index(batch_op.f('ix_webhook_events_match_provider_id'))

    op.drop_table('webhook_events')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_status_queued_at')
        batch_op.drop_index('ix_messages_conversation_created')
        batch_op.drop_index('ix_messages_contact_created')
        batch_op.drop_index(batch_op.f('ix_messages_channel_id'))
        batch_op.drop_index(batch_op.f('ix_messages_campaign_id'))

    op.drop_table('messages')
    op.drop_table('campaigns')
    op.drop_table('templates')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_status_last_activity')
        batch_op.drop_index(batch_op.f('ix_conversations_contact_id'))
        batch_op.drop_index(batch_op.f('ix_conversations_assignee_id'))

    op.drop_table('conversations')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_subject')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
    op.drop_table('channels')
