"""contact_imports: CSV files uploaded on the contacts page, with their mapping, dry run and progress

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:20:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=False),
        sa.Column('delimiter', sa.String(length=1), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=True),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('dry_run', sa.JSON(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('uploaded', 'checking', 'checked', 'importing', 'done', 'failed')",
                           name=op.f('ck_contact_imports_status_known')),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_contact_imports_created_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_imports')),
    )


def downgrade() -> None:
    op.drop_table('contact_imports')
