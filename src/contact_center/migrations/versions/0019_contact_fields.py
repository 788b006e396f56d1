"""contact_fields: fields a business defines for its contacts, and each contact's typed values

`contact_fields` holds the definitions (key, Portuguese label, type, choices, position);
`contact_field_values` one row per contact and field, the value in the column of its type
(`number`: integers, money in cents, booleans; `day`: dates; `text`: text and choices), each
indexed with the field first so that range filters on a million contacts read an index range.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact_fields',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('label', sa.String(length=80), nullable=False),
        sa.Column('type', sa.String(length=8), nullable=False),
        sa.Column('choices', sa.JSON(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN ('text', 'integer', 'money', 'date', 'boolean', 'choice')",
                           name=op.f('ck_contact_fields_type_known')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_fields')),
        sa.UniqueConstraint('key', name=op.f('uq_contact_fields_key')),
    )
    op.create_table(
        'contact_field_values',
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('field_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=True),
        sa.Column('day', sa.Date(), nullable=True),
        sa.Column('text', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_contact_field_values_contact_id_contacts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['field_id'], ['contact_fields.id'],
                                name=op.f('fk_contact_field_values_field_id_contact_fields'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('contact_id', 'field_id', name=op.f('pk_contact_field_values')),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_contact_field_values_number', 'contact_field_values', ['field_id', 'number', 'contact_id'])
    op.create_index('ix_contact_field_values_day', 'contact_field_values', ['field_id', 'day', 'contact_id'])
    op.create_index('ix_contact_field_values_text', 'contact_field_values', ['field_id', 'text', 'contact_id'])


def downgrade() -> None:
    op.drop_table('contact_field_values')
    op.drop_table('contact_fields')
