"""The Kolmeya sandbox provider is named kolmeya_sandbox

It was `sandbox`, when Kolmeya's was the only one; each provider's sandbox now says whose it is
(a WhatsApp sandbox stands beside it). Channels and the raw-event log's sources follow.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE channels SET provider = 'kolmeya_sandbox' WHERE provider = 'sandbox'")
    op.execute("UPDATE webhook_events SET source = 'kolmeya_sandbox' || substr(source, 8) WHERE source LIKE 'sandbox.%'")


def downgrade() -> None:
    op.execute("UPDATE channels SET provider = 'sandbox' WHERE provider = 'kolmeya_sandbox'")
    op.execute("UPDATE webhook_events SET source = 'sandbox' || substr(source, 16) WHERE source LIKE 'kolmeya\\_sandbox.%' ESCAPE '\\'")
