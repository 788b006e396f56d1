"""Reports: daily roll-ups and conversation times kept by trigger, and the indexes reports read

report_message_days counts outbound messages per Brasília day of creation, channel, campaign,
author and status; report_reply_days counts replies to campaign messages per day of the answered
message; report_conversations holds each conversation's first-response and resolution figures.
Triggers keep all three in the transaction that inserts a message, changes its status, opens or
closes a conversation, whichever code does it (ORM, the webhook writer's driver-level statements,
bulk inserts): nothing in Python can forget to. The upgrade fills them from what is stored.

Brasília days: PostgreSQL converts with its own time zone database; SQLite has none, so its
triggers shift by the offset zoneinfo gives America/Sao_Paulo when this migration runs (UTC−3,
without daylight saving since 2019). Should Brazil change its clocks again, a migration must
rewrite the SQLite triggers and recount the days after the change.

Indexes: failed messages by day and reason (partial: only failures have an entry), replies by the
message they answer (partial), operators' messages by time (partial), closes by time, opt-outs in
the audit log by time. A customer's reply writes in none of them unless it answers a message.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 10:00:00
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def _partial(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


INDEXES = (
    ("ix_messages_report_failed", "messages",
     ["created_at", "status", "status_reason", "channel_id", "campaign_id", "author_id"],
     _partial("status IN ('failed', 'rejected', 'expired', 'blocked')")),
    ("ix_messages_in_reply_to", "messages", ["in_reply_to_id"], _partial("in_reply_to_id IS NOT NULL")),
    ("ix_messages_report_operator", "messages", ["created_at", "author_id", "conversation_id", "channel_id"],
     _partial("author_id IS NOT NULL")),
    ("ix_conversation_events_kind_at", "conversation_events", ["kind", "at", "conversation_id", "actor_id"], {}),
    ("ix_audit_log_action_at", "audit_log", ["action", "at"], {}),
)

# Every column the conversations report reads, so that it reads the index alone.
CONVERSATION_INDEX = ['opened_at', 'channel_id', 'responder_id', 'response_seconds', 'closer_id',
                      'resolution_seconds']
MESSAGE_KEY = "day, channel_id, campaign_id, author_id, status"
REPLY_KEY = "day, channel_id, campaign_id"
ZONE = "America/Sao_Paulo"


def _sqlite_day() -> str:
    hours = ZoneInfo(ZONE).utcoffset(datetime.now()).total_seconds() / 3600
    return f"date({{0}}, '{hours:+g} hours')"


POSTGRES_DAY = f"CAST(({{0}} AT TIME ZONE '{ZONE}') AS DATE)"


def _count_message(row: str, change: int, day: str) -> str:
    return (f"INSERT INTO report_message_days ({MESSAGE_KEY}, messages) VALUES ({day.format(row + '.created_at')}, "
            f"{row}.channel_id, COALESCE({row}.campaign_id, 0), COALESCE({row}.author_id, 0), {row}.status, {change}) "
            f"ON CONFLICT ({MESSAGE_KEY}) DO UPDATE SET messages = report_message_days.messages + excluded.messages")


def _count_reply(day: str) -> str:
    # `replied` counts the answered message once: on its first reply (ix_messages_in_reply_to).
    return (f"INSERT INTO report_reply_days ({REPLY_KEY}, replies, replied) "
            f"SELECT {day.format('m.created_at')}, m.channel_id, m.campaign_id, 1, "
            "CASE WHEN EXISTS (SELECT 1 FROM messages r WHERE r.in_reply_to_id = m.id AND r.id <> NEW.id "
            "AND r.direction = 'in') THEN 0 ELSE 1 END "
            "FROM messages m WHERE m.id = NEW.in_reply_to_id AND m.campaign_id IS NOT NULL "
            f"ON CONFLICT ({REPLY_KEY}) DO UPDATE SET replies = report_reply_days.replies + excluded.replies, "
            "replied = report_reply_days.replied + excluded.replied")


def _seconds(later: str, earlier: str, postgres: bool) -> str:
    if postgres:
        return f"CAST(round(EXTRACT(EPOCH FROM ({later} - {earlier}))) AS INTEGER)"
    return f"CAST(round((julianday({later}) - julianday({earlier})) * 86400) AS INTEGER)"


def _conversation_statements(postgres: bool) -> dict[str, str]:
    """What each stored row does to report_conversations (the same on both databases)."""
    start = "COALESCE(first_in_at, opened_at)"
    return {
        "opened": "INSERT INTO report_conversations (conversation_id, channel_id, opened_at) "
                  "VALUES (NEW.id, NEW.channel_id, NEW.created_at)",
        # The customer's first message moves the start; an operator's answer before it no longer counts.
        "customer": "UPDATE report_conversations SET first_in_at = NEW.created_at, "
                    "responded_at = CASE WHEN responded_at < NEW.created_at THEN NULL ELSE responded_at END, "
                    "responder_id = CASE WHEN responded_at < NEW.created_at THEN NULL ELSE responder_id END, "
                    "response_seconds = CASE WHEN responded_at < NEW.created_at THEN NULL ELSE "
                    f"{_seconds('responded_at', 'NEW.created_at', postgres)} END "
                    "WHERE conversation_id = NEW.conversation_id "
                    "AND (first_in_at IS NULL OR first_in_at > NEW.created_at)",
        "operator": "UPDATE report_conversations SET responded_at = NEW.created_at, responder_id = NEW.author_id, "
                    f"response_seconds = {_seconds('NEW.created_at', start, postgres)} "
                    "WHERE conversation_id = NEW.conversation_id AND responded_at IS NULL "
                    f"AND NEW.created_at >= {start}",
        "closed": "UPDATE report_conversations SET closed_at = NEW.at, closer_id = NEW.actor_id, "
                  f"resolution_seconds = {_seconds('NEW.at', 'opened_at', postgres)} "
                  "WHERE conversation_id = NEW.conversation_id AND closed_at IS NULL AND NEW.at >= opened_at",
    }


def _sqlite_triggers() -> list[str]:
    day = _sqlite_day()
    conversation = _conversation_statements(postgres=False)
    return [
        f"""CREATE TRIGGER report_message_inserted AFTER INSERT ON messages WHEN NEW.direction = 'out'
            BEGIN {_count_message('NEW', 1, day)}; END""",
        f"""CREATE TRIGGER report_message_status AFTER UPDATE OF status ON messages
            WHEN NEW.direction = 'out' AND OLD.status IS NOT NEW.status
            BEGIN {_count_message('OLD', -1, day)}; {_count_message('NEW', 1, day)}; END""",
        f"""CREATE TRIGGER report_message_deleted AFTER DELETE ON messages WHEN OLD.direction = 'out'
            BEGIN {_count_message('OLD', -1, day)}; END""",
        f"""CREATE TRIGGER report_reply_inserted AFTER INSERT ON messages
            WHEN NEW.direction = 'in' AND NEW.in_reply_to_id IS NOT NULL
            BEGIN {_count_reply(day)}; END""",
        f"""CREATE TRIGGER report_conversation_opened AFTER INSERT ON conversations
            BEGIN {conversation['opened']}; END""",
        f"""CREATE TRIGGER report_customer_wrote AFTER INSERT ON messages WHEN NEW.direction = 'in'
            BEGIN {conversation['customer']}; END""",
        f"""CREATE TRIGGER report_operator_wrote AFTER INSERT ON messages WHEN NEW.author_id IS NOT NULL
            AND NEW.direction = 'out' BEGIN {conversation['operator']}; END""",
        f"""CREATE TRIGGER report_conversation_closed AFTER INSERT ON conversation_events WHEN NEW.kind = 'closed'
            BEGIN {conversation['closed']}; END""",
    ]


def _postgres_triggers() -> list[str]:
    day = POSTGRES_DAY
    conversation = _conversation_statements(postgres=True)
    return [
        f"""CREATE FUNCTION report_roll_up() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'out' THEN {_count_message('OLD', -1, day)}; END IF;
              IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.direction = 'out' THEN {_count_message('NEW', 1, day)}; END IF;
              IF TG_OP = 'INSERT' AND NEW.direction = 'in' AND NEW.in_reply_to_id IS NOT NULL THEN
                {_count_reply(day)};
              END IF;
              IF TG_OP = 'INSERT' AND NEW.direction = 'in' THEN {conversation['customer']}; END IF;
              IF TG_OP = 'INSERT' AND NEW.direction = 'out' AND NEW.author_id IS NOT NULL THEN
                {conversation['operator']};
              END IF;
              RETURN NULL;
            END $$""",
        f"""CREATE FUNCTION report_conversation_opened() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {conversation['opened']}; RETURN NULL; END $$""",
        f"""CREATE FUNCTION report_conversation_closed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {conversation['closed']}; RETURN NULL; END $$""",
        "CREATE TRIGGER report_conversation_opened AFTER INSERT ON conversations FOR EACH ROW "
        "EXECUTE FUNCTION report_conversation_opened()",
        "CREATE TRIGGER report_conversation_closed AFTER INSERT ON conversation_events FOR EACH ROW "
        "WHEN (NEW.kind = 'closed') EXECUTE FUNCTION report_conversation_closed()",
        "CREATE TRIGGER report_message_changed AFTER INSERT OR DELETE ON messages FOR EACH ROW "
        "EXECUTE FUNCTION report_roll_up()",
        "CREATE TRIGGER report_message_status AFTER UPDATE OF status ON messages FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION report_roll_up()",
    ]


def upgrade() -> None:
    for name, table, columns, options in INDEXES:
        op.create_index(name, table, columns, unique=False, **options)
    op.create_table(
        'report_message_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('messages', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'channel_id', 'campaign_id', 'author_id', 'status',
                                name=op.f('pk_report_message_days')),
    )
    op.create_table(
        'report_reply_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('replies', sa.Integer(), nullable=False),
        sa.Column('replied', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'channel_id', 'campaign_id', name=op.f('pk_report_reply_days')),
    )
    op.create_table(
        'report_conversations',
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('opened_at', contact_center.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('first_in_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('responded_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('responder_id', sa.Integer(), nullable=True),
        sa.Column('response_seconds', sa.Integer(), nullable=True),
        sa.Column('closed_at', contact_center.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('closer_id', sa.Integer(), nullable=True),
        sa.Column('resolution_seconds', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_report_conversations')),
    )
    op.create_index('ix_report_conversations_opened', 'report_conversations', CONVERSATION_INDEX)
    postgres = op.get_bind().dialect.name == "postgresql"
    day = POSTGRES_DAY if postgres else _sqlite_day()
    _fill_conversations(postgres)
    op.execute(f"INSERT INTO report_message_days ({MESSAGE_KEY}, messages) "
               f"SELECT {day.format('created_at')}, channel_id, COALESCE(campaign_id, 0), COALESCE(author_id, 0), "
               f"status, count(*) FROM messages WHERE direction = 'out' GROUP BY 1, 2, 3, 4, 5")
    op.execute(f"INSERT INTO report_reply_days ({REPLY_KEY}, replies, replied) "
               f"SELECT {day.format('m.created_at')}, m.channel_id, m.campaign_id, count(*), count(DISTINCT m.id) "
               "FROM messages r JOIN messages m ON m.id = r.in_reply_to_id "
               "WHERE r.direction = 'in' AND m.campaign_id IS NOT NULL GROUP BY 1, 2, 3")
    for statement in (_postgres_triggers() if postgres else _sqlite_triggers()):
        op.execute(statement)


def _fill_conversations(postgres: bool) -> None:
    """The figures of the conversations already stored, as the triggers would have kept them."""
    start = "COALESCE(first_in_at, opened_at)"
    row = "report_conversations.conversation_id"
    op.execute("INSERT INTO report_conversations (conversation_id, channel_id, opened_at, first_in_at) "
               "SELECT c.id, c.channel_id, c.created_at, (SELECT min(m.created_at) FROM messages m "
               "WHERE m.conversation_id = c.id AND m.direction = 'in') FROM conversations c")
    op.execute("UPDATE report_conversations SET responded_at = (SELECT min(m.created_at) FROM messages m "
               f"WHERE m.conversation_id = {row} AND m.author_id IS NOT NULL AND m.direction = 'out' "
               f"AND m.created_at >= {start})")
    op.execute("UPDATE report_conversations SET responder_id = (SELECT m.author_id FROM messages m "
               f"WHERE m.conversation_id = {row} AND m.author_id IS NOT NULL AND m.direction = 'out' "
               "AND m.created_at = report_conversations.responded_at ORDER BY m.id LIMIT 1), "
               f"response_seconds = {_seconds('responded_at', start, postgres)} WHERE responded_at IS NOT NULL")
    op.execute("UPDATE report_conversations SET closed_at = (SELECT min(e.at) FROM conversation_events e "
               f"WHERE e.conversation_id = {row} AND e.kind = 'closed' AND e.at >= opened_at)")
    op.execute("UPDATE report_conversations SET closer_id = (SELECT e.actor_id FROM conversation_events e "
               f"WHERE e.conversation_id = {row} AND e.kind = 'closed' AND e.at = report_conversations.closed_at "
               f"ORDER BY e.id LIMIT 1), resolution_seconds = {_seconds('closed_at', 'opened_at', postgres)} "
               "WHERE closed_at IS NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_message_status ON messages")
        op.execute("DROP TRIGGER report_message_changed ON messages")
        op.execute("DROP FUNCTION report_roll_up()")
        op.execute("DROP TRIGGER report_conversation_opened ON conversations")
        op.execute("DROP TRIGGER report_conversation_closed ON conversation_events")
        op.execute("DROP FUNCTION report_conversation_opened()")
        op.execute("DROP FUNCTION report_conversation_closed()")
    else:
        for name in ("report_message_inserted", "report_message_status", "report_message_deleted",
                     "report_reply_inserted", "report_conversation_opened", "report_customer_wrote",
                     "report_operator_wrote", "report_conversation_closed"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index('ix_report_conversations_opened', table_name='report_conversations')
    op.drop_table('report_conversations')
    op.drop_table('report_reply_days')
    op.drop_table('report_message_days')
    for name, table, _columns, _options in reversed(INDEXES):
        op.drop_index(name, table_name=table)
