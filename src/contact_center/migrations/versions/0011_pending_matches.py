"""Statuses are looked up by the ids they name only while pending

The indexes on webhook_events.match_reference and match_provider_id hold only the pending
statuses, the ones events.pending_for looks up. An applied status then writes no entry in them;
before, each status of a batch wrote one at a random place in each, a good share of a status
batch's commit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PENDING = sa.text("outcome = 'pending'")
COLUMNS = ('match_reference', 'match_provider_id')


def upgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_index(batch_op.f(f'ix_webhook_events_{column}'))
            batch_op.create_index(batch_op.f(f'ix_webhook_events_{column}'), [column], unique=False,
                                  sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.drop_index(batch_op.f(f'ix_webhook_events_{column}'))
            batch_op.create_index(batch_op.f(f'ix_webhook_events_{column}'), [column], unique=False)
