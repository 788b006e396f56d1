"""report_handled_days: the days an operator wrote in a conversation, for "conversations handled"

The conversations report counted, for each operator and overall, the distinct conversations with an
operator message in the period: two COUNT(DISTINCT) over every operator message of the period
through ix_messages_report_operator (about 160 ms of a 90-day report over a million messages),
which nothing else reads and goes. This table keeps one row per conversation, author and Brasília
day on which they wrote in it (author 0: any operator), with the previous such day
(`previous_day`). A conversation was handled in a period exactly once per row whose day is in the
period and whose previous day is not: the count is a range count, walked author by author through
an index led by the author. Closes per operator get such an index too (ix_conversation_events_closer):
counted closer by closer instead of sorted, 20 ms less.

Triggers keep it, whichever code writes: an operator's message adds its day (and, stored out of
order, becomes the previous day of the next row); a merge that moves messages into the surviving
conversation adds them there; a conversation removed takes its rows with it. The upgrade fills it
from what is stored.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 15:30:00
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

ZONE = "America/Sao_Paulo"
POSTGRES_DAY = f"CAST(({{0}} AT TIME ZONE '{ZONE}') AS DATE)"
REPORT_INDEX = ["author_id", "day", "previous_day", "channel_id", "conversation_id"]
CLOSER_INDEX = ["kind", "actor_id", "at", "conversation_id"]
OPERATOR_INDEX = ["created_at", "author_id", "conversation_id", "channel_id"]  # what 0018 made, for the downgrade
OPERATOR_WROTE = "NEW.author_id IS NOT NULL"
MOVED = "OLD.conversation_id IS NOT NEW.conversation_id"
MOVED_POSTGRES = "OLD.conversation_id IS DISTINCT FROM NEW.conversation_id"


def _sqlite_day() -> str:
    # As migration 0018 counts days: SQLite has no time zones, so the offset in force (UTC−3).
    hours = ZoneInfo(ZONE).utcoffset(datetime.now()).total_seconds() / 3600
    return f"date({{0}}, '{hours:+g} hours')"


def _handled(author: str, day: str) -> list[str]:
    """What a stored operator message does to its conversation's rows for `author`."""
    same = f"conversation_id = NEW.conversation_id AND author_id = {author}"
    today = day.format("NEW.created_at")
    return [
        "INSERT INTO report_handled_days (conversation_id, author_id, day, channel_id, previous_day) "
        f"VALUES (NEW.conversation_id, {author}, {today}, NEW.channel_id, "
        f"(SELECT max(day) FROM report_handled_days WHERE {same} AND day < {today})) "
        "ON CONFLICT (conversation_id, author_id, day) DO NOTHING",
        # Stored after a later day (a merge, an import): that day's previous day is now this one.
        f"UPDATE report_handled_days SET previous_day = {today} WHERE {same} "
        f"AND day = (SELECT min(day) FROM report_handled_days WHERE {same} AND day > {today}) "
        f"AND (previous_day IS NULL OR previous_day < {today})",
    ]


def _statements(day: str) -> str:
    return "; ".join(_handled("NEW.author_id", day) + _handled("0", day))


REMOVE = ("DELETE FROM report_conversations WHERE conversation_id = OLD.id; "
          "DELETE FROM report_handled_days WHERE conversation_id = OLD.id")
REMOVE_BEFORE = "DELETE FROM report_conversations WHERE conversation_id = OLD.id"


def _fill(day: str) -> None:
    days = (f"SELECT conversation_id, {{0}} AS author_id, {day.format('created_at')} AS day, "
            "min(channel_id) AS channel_id FROM messages WHERE author_id IS NOT NULL "
            "GROUP BY 1, 2, 3")
    op.execute("INSERT INTO report_handled_days (conversation_id, author_id, day, channel_id, previous_day) "
               "SELECT conversation_id, author_id, day, channel_id, "
               "lag(day) OVER (PARTITION BY conversation_id, author_id ORDER BY day) "
               f"FROM ({days.format('author_id')} UNION ALL {days.format('0')}) AS handled")


def upgrade() -> None:
    op.create_table(
        'report_handled_days',
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('previous_day', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('conversation_id', 'author_id', 'day', name=op.f('pk_report_handled_days')),
    )
    op.create_index('ix_report_handled_days_author', 'report_handled_days', REPORT_INDEX)
    op.drop_index('ix_messages_report_operator', table_name='messages')
    op.create_index('ix_conversation_events_closer', 'conversation_events', CLOSER_INDEX)
    postgres = op.get_bind().dialect.name == "postgresql"
    day = POSTGRES_DAY if postgres else _sqlite_day()
    _fill(day)
    if postgres:
        op.execute(f"""CREATE FUNCTION report_operator_handled() RETURNS trigger LANGUAGE plpgsql AS $$
                       BEGIN {_statements(day)}; RETURN NULL; END $$""")
        op.execute("CREATE TRIGGER report_operator_handled AFTER INSERT ON messages "
                   f"FOR EACH ROW WHEN ({OPERATOR_WROTE}) EXECUTE FUNCTION report_operator_handled()")
        op.execute("CREATE TRIGGER report_operator_handled_moved AFTER UPDATE OF conversation_id ON messages "
                   f"FOR EACH ROW WHEN ({OPERATOR_WROTE} AND {MOVED_POSTGRES}) "
                   "EXECUTE FUNCTION report_operator_handled()")
        op.execute(f"""CREATE OR REPLACE FUNCTION report_conversation_removed() RETURNS trigger LANGUAGE plpgsql
                       AS $$ BEGIN {REMOVE}; RETURN NULL; END $$""")
    else:
        op.execute(f"CREATE TRIGGER report_operator_handled AFTER INSERT ON messages WHEN {OPERATOR_WROTE} "
                   f"BEGIN {_statements(day)}; END")
        op.execute("CREATE TRIGGER report_operator_handled_moved AFTER UPDATE OF conversation_id ON messages "
                   f"WHEN {OPERATOR_WROTE} AND {MOVED} BEGIN {_statements(day)}; END")
        op.execute("DROP TRIGGER report_conversation_removed")
        op.execute(f"CREATE TRIGGER report_conversation_removed AFTER DELETE ON conversations BEGIN {REMOVE}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_operator_handled_moved ON messages")
        op.execute("DROP TRIGGER report_operator_handled ON messages")
        op.execute("DROP FUNCTION report_operator_handled()")
        op.execute(f"""CREATE OR REPLACE FUNCTION report_conversation_removed() RETURNS trigger LANGUAGE plpgsql
                       AS $$ BEGIN {REMOVE_BEFORE}; RETURN NULL; END $$""")
    else:
        op.execute("DROP TRIGGER report_operator_handled")
        op.execute("DROP TRIGGER report_operator_handled_moved")
        op.execute("DROP TRIGGER report_conversation_removed")
        op.execute(f"CREATE TRIGGER report_conversation_removed AFTER DELETE ON conversations "
                   f"BEGIN {REMOVE_BEFORE}; END")
    op.create_index('ix_messages_report_operator', 'messages', OPERATOR_INDEX,
                    sqlite_where=sa.text("author_id IS NOT NULL"), postgresql_where=sa.text("author_id IS NOT NULL"))
    op.drop_index('ix_conversation_events_closer', table_name='conversation_events')
    op.drop_index('ix_report_handled_days_author', table_name='report_handled_days')
    op.drop_table('report_handled_days')
