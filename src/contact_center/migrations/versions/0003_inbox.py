"""inbox: conversation events, quick replies, list indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 20:09:29.096879
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quick_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=60), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_quick_replies_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quick_replies')),
    sa.UniqueConstraint('title', name=op.f('uq_quick_replies_title'))
    )
    op.create_table('conversation_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('previous_assignee_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("kind IN ('taken', 'released', 'transferred', 'assigned', 'closed', 'reopened', 'contact_linked')", name=op.f('ck_conversation_events_kind_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_conversation_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_conversation_events_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversation_events_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_events_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['previous_assignee_id'], ['users.id'], name=op.f('fk_conversation_events_previous_assignee_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_events'))
    )
    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_events_conversation_at', ['conversation_id', 'at'], unique=False)

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_assignee_last_activity', ['assignee_id', 'last_activity_at'], unique=False)
        batch_op.create_index('ix_conversations_last_activity', ['last_activity_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_last_activity')
        batch_op.drop_index('ix_conversations_assignee_last_activity')

    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_events_conversation_at')

    op.drop_table('conversation_events')
    op.drop_table('quick_replies')
