"""ui_sessions and login_failures: UI sessions that end, and login throttling

A UI session used to be the signed cookie alone, valid for 12 hours whatever happened. Each login
is now a row (the cookie carries a random token, the row its hash), so logging out, an admin, or a
change to the user's password, role or active flag ends it on the server. login_failures holds the
last minute's wrong passwords per user name and client address, for the login throttle. Cookies
from before this revision are no longer accepted: their users log in again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ui_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=False),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('logout', 'ended_by_admin', 'password_changed', 'role_changed', 'deactivated')", name=op.f('ck_ui_sessions_end_reason_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ui_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ui_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_ui_sessions_token_hash'))
    )
    with op.batch_alter_table('ui_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ui_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_client_address_at', ['client_address', 'at'], unique=False)
        batch_op.create_index('ix_login_failures_username_at', ['username', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_username_at')
        batch_op.drop_index('ix_login_failures_client_address_at')

    op.drop_table('login_failures')
    with op.batch_alter_table('ui_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ui_sessions_user_id'))

    op.drop_table('ui_sessions')
