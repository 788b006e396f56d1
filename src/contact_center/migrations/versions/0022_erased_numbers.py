"""erased numbers: keyed hashes of the numbers of erased contacts who had opted out

`erased_numbers` maps the HMAC of each match key of an erased contact with an opt-out flag to its
tombstone (privacy/erased_numbers.py): every send checks the number against it, so the opt-out
outlives the erasure without the number being kept.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 15:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'erased_numbers',
        sa.Column('number_hash', sa.String(length=64), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_erased_numbers_contact_id_contacts'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('number_hash', name=op.f('pk_erased_numbers')),
    )
    op.create_index(op.f('ix_erased_numbers_contact_id'), 'erased_numbers', ['contact_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_erased_numbers_contact_id'), table_name='erased_numbers')
    op.drop_table('erased_numbers')
