"""What the reports read through (migrations 0018 and 0023): daily roll-ups of messages, replies and
each conversation's times, which the database keeps up to date by trigger, and indexes on the
tables the reports read, declared here so that what each is for stays next to the queries.

Each index holds the columns its report reads, so a report reads index pages only, never the
rows. Partial where a report reads a part of the table: a customer's reply (the webhook's hot
path) writes an entry only in `ix_messages_in_reply_to`, and only when it answers a message.
SQLite uses a partial index only for a query whose WHERE states its condition as written here, so
reports/queries.py writes the same literals."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.audit.models import AuditEntry
from contact_center.db import Base, UTCDateTime
from contact_center.inbox.models import ConversationEvent
from contact_center.messaging.models import Message

FAILED = "status IN ('failed', 'rejected', 'expired', 'blocked')"
REPLYING = "in_reply_to_id IS NOT NULL"


def _partial(condition: str) -> dict:
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


REPORT_INDEXES = (
    # failure reasons: only failed messages have an entry, written when they fail
    Index("ix_messages_report_failed", Message.created_at, Message.status, Message.status_reason,
          Message.channel_id, Message.campaign_id, Message.author_id, **_partial(FAILED)),
    # whether a campaign message was already replied to (the reply trigger asks), the timeline's quotes
    Index("ix_messages_in_reply_to", Message.in_reply_to_id, **_partial(REPLYING)),
    # closes per day
    Index("ix_conversation_events_kind_at", ConversationEvent.kind, ConversationEvent.at,
          ConversationEvent.conversation_id, ConversationEvent.actor_id),
    # closes per operator: each closer's in turn, in order, instead of sorting the period's (migration 0023)
    Index("ix_conversation_events_closer", ConversationEvent.kind, ConversationEvent.actor_id, ConversationEvent.at,
          ConversationEvent.conversation_id),
    # opt-outs per day
    Index("ix_audit_log_action_at", AuditEntry.action, AuditEntry.at),
)


class MessageDay(Base):
    """Outbound messages counted per Brasília day of creation, channel, campaign, author and status
    now: a month of the messages report is some thousands of these rows instead of a third of a
    million messages. Written only by the database's triggers on `messages` (migration 0013), in
    the transaction that inserts a message or changes its status, whatever code path does it (the
    webhook writer's driver-level statements included). 0 stands for no campaign / no author."""

    __tablename__ = "report_message_days"
    # On SQLite the primary key holds the counts (migration 0024): a range of days is one walk.
    __table_args__ = {"sqlite_with_rowid": False}

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)


class ReplyDay(Base):
    """Customers' replies to campaign messages, per Brasília day on which the answered message was
    created, its channel and campaign: `replies` every reply, `replied` the messages with at least
    one. Written only by the trigger on inserted inbound messages (migration 0013)."""

    __tablename__ = "report_reply_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    replies: Mapped[int] = mapped_column(Integer)
    replied: Mapped[int] = mapped_column(Integer)


class ConversationTimes(Base):
    """A conversation's report figures, one row each, kept by the database's triggers (migration
    0013) as its messages and closes are stored: when it opened, the customer's first message, the
    first operator message after that (or after the opening, while the customer has not written)
    and who wrote it, the first close after opening and who closed it, and the two durations in
    seconds. The conversations report reads the period's rows instead of their messages."""

    __tablename__ = "report_conversations"
    # Every column the report reads, so that it reads the index alone.
    __table_args__ = (Index("ix_report_conversations_opened", "opened_at", "channel_id", "responder_id",
                            "response_seconds", "closer_id", "resolution_seconds"),)

    conversation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responder_id: Mapped[int | None] = mapped_column(Integer)
    response_seconds: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closer_id: Mapped[int | None] = mapped_column(Integer)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)


class HandledDay(Base):
    """A Brasília day on which an operator (`author_id`; 0 for any operator) wrote in a
    conversation, with the previous such day: a conversation was handled in a period once per row
    whose day is in it and whose previous day is not, so "conversations handled" is a range count
    instead of a distinct count over the period's operator messages. Written only by the database's
    triggers (migration 0023), as messages are stored or moved by a merge."""

    __tablename__ = "report_handled_days"
    # Every column the report reads, so that it reads the index alone; by author first, so that
    # counting per author walks each author's days in order instead of sorting the period's rows.
    __table_args__ = (Index("ix_report_handled_days_author", "author_id", "day", "previous_day", "channel_id",
                            "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[int] = mapped_column(Integer)
    previous_day: Mapped[date | None] = mapped_column(Date)
