"""erased contacts: when a contact's personal data was erased (LGPD), and erased partners a sync skipped

`contacts.erased_at` marks the blanked row an erasure leaves (privacy/erasure.py). With the Odoo
partner id it keeps, it is the tombstone the partner sync reads so as not to bring the person back;
`odoo_sync_state.last_skipped_erased` counts the partners the last run skipped for it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 00:10:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('erased_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('odoo_sync_state') as batch:
        batch.add_column(sa.Column('last_skipped_erased', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('odoo_sync_state') as batch:
        batch.drop_column('last_skipped_erased')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('erased_at')
