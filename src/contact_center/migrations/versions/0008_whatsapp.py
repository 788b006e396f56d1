"""WhatsApp: contact identifiers, approved templates, paused channels, the 24-hour window, content

contact_identifiers keeps the ids WhatsApp knows a customer by (wa_id, business-scoped user id,
username); whatsapp_templates the templates synced from Meta. A channel can be paused by the
system (a revoked token). A conversation knows when its WhatsApp window closes, and its key may be
a user id instead of a phone. A message says what it holds besides text (content_type, content),
and when a voice note was played. wamids are longer than Kolmeya's ids: 128 characters.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contact_identifiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_identifiers_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_identifiers')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_contact_identifiers_kind_value'))
    )
    with op.batch_alter_table('contact_identifiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_identifiers_contact_id'), ['contact_id'], unique=False)

    op.create_table('whatsapp_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('synced_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_whatsapp_templates_channel_id_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_templates')),
    sa.UniqueConstraint('channel_id', 'name', 'language', name=op.f('uq_whatsapp_templates_channel_id_name_language'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opt_out_marketing', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('paused_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('window_closes_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column('phone_key',
               existing_type=sa.VARCHAR(length=20),
               type_=sa.String(length=140),
               existing_nullable=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_type', sa.String(length=16), server_default='text', nullable=False))
        batch_op.add_column(sa.Column('content', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('played_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('media_state', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('fallback_of_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_media_state'), ['media_state'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_messages_fallback_of_id_messages'), 'messages', ['fallback_of_id'], ['id'], ondelete='SET NULL')
        batch_op.alter_column('provider_message_id',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=128),
               existing_nullable=True)

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.alter_column('match_provider_id',
               existing_type=sa.VARCHAR(length=64),
               type_=sa.String(length=128),
               existing_nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.alter_column('match_provider_id',
               existing_type=sa.String(length=128),
               type_=sa.VARCHAR(length=64),
               existing_nullable=True)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('provider_message_id',
               existing_type=sa.String(length=128),
               type_=sa.VARCHAR(length=64),
               existing_nullable=True)
        batch_op.drop_constraint(batch_op.f('fk_messages_fallback_of_id_messages'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_messages_media_state'))
        batch_op.drop_column('fallback_of_id')
        batch_op.drop_column('media_state')
        batch_op.drop_column('played_at')
        batch_op.drop_column('content')
        batch_op.drop_column('content_type')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.alter_column('phone_key',
               existing_type=sa.String(length=140),
               type_=sa.VARCHAR(length=20),
               existing_nullable=False)
        batch_op.drop_column('window_closes_at')

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('paused_reason')
        batch_op.drop_column('paused_at')

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('opt_out_marketing')

    op.drop_table('whatsapp_templates')
    with op.batch_alter_table('contact_identifiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_identifiers_contact_id'))

    op.drop_table('contact_identifiers')
