"""report_message_days on SQLite: the table is its primary key (WITHOUT ROWID)

The messages and replies reports sum `messages` over a range of days of this roll-up. As a rowid
table, each row the range finds in the primary key's index was then read from the table for its
count: half of a 90-day messages report's time over a million messages. Without a rowid the
primary key holds the row, so a range is one walk. PostgreSQL has nothing to change.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 16:10:00
"""

from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

COLUMNS = "day, channel_id, campaign_id, author_id, status, messages"
TABLE = """CREATE TABLE report_message_days (
    day DATE NOT NULL, channel_id INTEGER NOT NULL, campaign_id INTEGER NOT NULL, author_id INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL, messages INTEGER NOT NULL,
    CONSTRAINT pk_report_message_days PRIMARY KEY (day, channel_id, campaign_id, author_id, status)){}"""


def _rebuild(options: str) -> None:
    # Same name throughout: the triggers on `messages` (migration 0018) write it by name, and
    # SQLite rewrites the triggers of a table renamed.
    op.execute(f"CREATE TEMPORARY TABLE message_days_copy AS SELECT {COLUMNS} FROM report_message_days")
    op.execute("DROP TABLE report_message_days")
    op.execute(TABLE.format(options))
    op.execute(f"INSERT INTO report_message_days ({COLUMNS}) SELECT {COLUMNS} FROM message_days_copy")
    op.execute("DROP TABLE message_days_copy")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(" WITHOUT ROWID")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("")
