"""contact_tags: free-text tags on contacts; an index on contacts.email for the duplicates report

`contact_tags` holds one row per contact and tag: the tag as written and its key (lower case,
no accents, single spaces), unique per contact and indexed by key so that "contacts with these
tags" reads an index range. `ix_contacts_email` lets the duplicates report walk the addresses
in order (they are stored normalised: the domain in lower case).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact_tags',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('key', sa.String(length=50), nullable=False),
        sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_tags_contact_id_contacts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_tags')),
        sa.UniqueConstraint('contact_id', 'key', name=op.f('uq_contact_tags_contact_id_key')),
    )
    op.create_index('ix_contact_tags_key_contact', 'contact_tags', ['key', 'contact_id'])
    op.create_index(op.f('ix_contacts_email'), 'contacts', ['email'])


def downgrade() -> None:
    op.drop_index(op.f('ix_contacts_email'), table_name='contacts')
    op.drop_table('contact_tags')
