"""report_message_days on PostgreSQL: counted once per statement, not once per row

A row-level trigger added or took one from a day's counter for each message a statement wrote. A
batch of a campaign's messages, or a dispatch marking a batch sent, updates the same few counter
rows hundreds of times in one transaction, and PostgreSQL keeps a version of the row per update
that each next update walks past: quadratic in the batch (a million messages inserted in one
statement had written 640,000 after eight minutes). Statement-level triggers with transition
tables now sum each statement's changes per counter and write each counter once, in key order
(two transactions then take the same counters in the same order instead of deadlocking).

An update counts a message again when anything its counter is keyed by changed (day, channel,
campaign, author, status); the row-level trigger looked at the status only. The replies and the
conversation times stay row-level: they touch other rows each time. SQLite keeps its row-level
triggers (a row is updated in place there: no versions to walk).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 16:40:00
"""

from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

ZONE = "America/Sao_Paulo"
KEY = "day, channel_id, campaign_id, author_id, status"


def _counted(row: str, change: str) -> str:
    return (f"CAST(({row}.created_at AT TIME ZONE '{ZONE}') AS DATE), {row}.channel_id, "
            f"COALESCE({row}.campaign_id, 0), COALESCE({row}.author_id, 0), {row}.status, {change}")


def _write(changes: str) -> str:
    return (f"INSERT INTO report_message_days ({KEY}, messages) "
            f"SELECT {KEY}, sum(change) FROM ({changes}) AS changes ({KEY}, change) "
            f"GROUP BY {KEY} HAVING sum(change) <> 0 ORDER BY {KEY} "
            f"ON CONFLICT ({KEY}) DO UPDATE SET messages = report_message_days.messages + excluded.messages")


MOVED = ("(o.created_at, o.channel_id, o.campaign_id, o.author_id, o.status, o.direction) IS DISTINCT FROM "
         "(n.created_at, n.channel_id, n.campaign_id, n.author_id, n.status, n.direction)")
STATEMENTS = {
    "inserted": ("INSERT", "NEW TABLE AS added",
                 _write(f"SELECT {_counted('a', '1')} FROM added a WHERE a.direction = 'out'")),
    "deleted": ("DELETE", "OLD TABLE AS removed",
                _write(f"SELECT {_counted('r', '-1')} FROM removed r WHERE r.direction = 'out'")),
    "updated": ("UPDATE", "OLD TABLE AS before NEW TABLE AS after",
                _write(f"SELECT {_counted('o', '-1')} FROM before o JOIN after n ON n.id = o.id "
                       f"WHERE o.direction = 'out' AND {MOVED} UNION ALL "
                       f"SELECT {_counted('n', '1')} FROM before o JOIN after n ON n.id = o.id "
                       f"WHERE n.direction = 'out' AND {MOVED}")),
}


def _row_level(message_days: bool) -> str:
    """migration 0018's report_roll_up(), with or without its counting of message days."""
    count_old = (f"IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'out' THEN "
                 f"INSERT INTO report_message_days ({KEY}, messages) VALUES ({_counted('OLD', '-1')}) "
                 f"ON CONFLICT ({KEY}) DO UPDATE SET messages = report_message_days.messages + excluded.messages; "
                 "END IF;") if message_days else ""
    count_new = (f"IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.direction = 'out' THEN "
                 f"INSERT INTO report_message_days ({KEY}, messages) VALUES ({_counted('NEW', '1')}) "
                 f"ON CONFLICT ({KEY}) DO UPDATE SET messages = report_message_days.messages + excluded.messages; "
                 "END IF;") if message_days else ""
    return count_old + count_new


def _replace_roll_up(message_days: bool) -> None:
    """Rewrites report_roll_up() from its stored definition: only its message-days part changes."""
    bind = op.get_bind()
    source = bind.exec_driver_sql("SELECT prosrc FROM pg_proc WHERE proname = 'report_roll_up'").scalar()
    marker = "IF TG_OP = 'INSERT' AND NEW.direction = 'in' AND NEW.in_reply_to_id IS NOT NULL THEN"
    begin = source.index("BEGIN") + len("BEGIN")
    rest = source[source.index(marker):]
    body = source[:begin] + " " + _row_level(message_days) + " " + rest
    op.execute(f"CREATE OR REPLACE FUNCTION report_roll_up() RETURNS trigger LANGUAGE plpgsql AS $${body}$$")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER report_message_status ON messages")
    op.execute("DROP TRIGGER report_message_changed ON messages")
    _replace_roll_up(message_days=False)
    op.execute("CREATE TRIGGER report_message_changed AFTER INSERT ON messages FOR EACH ROW "
               "EXECUTE FUNCTION report_roll_up()")
    for name, (event, tables, statement) in STATEMENTS.items():
        op.execute(f"CREATE FUNCTION report_messages_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {statement}; RETURN NULL; END $$")
        op.execute(f"CREATE TRIGGER report_messages_{name} AFTER {event} ON messages REFERENCING {tables} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION report_messages_{name}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in STATEMENTS:
        op.execute(f"DROP TRIGGER report_messages_{name} ON messages")
        op.execute(f"DROP FUNCTION report_messages_{name}()")
    op.execute("DROP TRIGGER report_message_changed ON messages")
    _replace_roll_up(message_days=True)
    op.execute("CREATE TRIGGER report_message_changed AFTER INSERT OR DELETE ON messages FOR EACH ROW "
               "EXECUTE FUNCTION report_roll_up()")
    op.execute("CREATE TRIGGER report_message_status AFTER UPDATE OF status ON messages FOR EACH ROW "
               "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION report_roll_up()")
