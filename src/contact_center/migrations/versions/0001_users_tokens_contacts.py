"""users, api tokens and contacts

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 19:38:28.059683
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('phone_key', sa.String(length=20), nullable=True),
    sa.Column('mobile', sa.String(length=64), nullable=True),
    sa.Column('mobile_e164', sa.String(length=20), nullable=True),
    sa.Column('mobile_key', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('document', sa.String(length=14), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('opt_out_sms', sa.Boolean(), nullable=False),
    sa.Column('opt_out_whatsapp', sa.Boolean(), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('document', name=op.f('uq_contacts_document'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_mobile_key'), ['mobile_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_phone_key'), ['phone_key'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f('ck_users_role_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_phone_key'))
        batch_op.drop_index(batch_op.f('ix_contacts_mobile_key'))

    op.drop_table('contacts')
