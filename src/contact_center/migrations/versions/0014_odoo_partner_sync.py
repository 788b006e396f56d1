"""Odoo partner sync: contacts.odoo_partner_id and the sync's mark

contacts.odoo_partner_id keeps the res.partner a contact came from (unique: one contact per
partner), so a later sync updates it instead of creating another. odoo_sync_state holds the
(write_date, id) mark the incremental sync continues from, what the last run did, and the lease
that keeps two runs from going at once.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('odoo_partner_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_contacts_odoo_partner_id'), ['odoo_partner_id'])
    op.create_table(
        'odoo_sync_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('mark_write_date', sa.String(length=32), nullable=True),
        sa.Column('mark_partner_id', sa.Integer(), nullable=True),
        sa.Column('last_started_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_finished_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_succeeded_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('running_until', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_read', sa.Integer(), nullable=False),
        sa.Column('last_created', sa.Integer(), nullable=False),
        sa.Column('last_updated', sa.Integer(), nullable=False),
        sa.Column('last_unchanged', sa.Integer(), nullable=False),
        sa.Column('last_rejected', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_odoo_sync_state')),
    )


def downgrade() -> None:
    op.drop_table('odoo_sync_state')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_contacts_odoo_partner_id'), type_='unique')
        batch_op.drop_column('odoo_partner_id')
