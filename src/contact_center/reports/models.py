"""The indexes the reports read through (migration 0013). The reports own no table: these sit on
the tables they read, declared here so that what each is for stays next to the queries.

Each holds the columns its report groups by, so a report reads index pages only, never the rows.
Partial where a report reads a part of the table: a customer's reply (the webhook's hot path)
writes one entry at the end of `ix_messages_report_in` and none in the outbound or operator ones.
SQLite uses a partial index only for a query whose WHERE states its condition as written here, so
reports/queries.py writes the same literals."""

from __future__ import annotations

from sqlalchemy import Index, text

from contact_center.audit.models import AuditEntry
from contact_center.inbox.models import Conversation, ConversationEvent
from contact_center.messaging.models import Message

OUTBOUND = "direction = 'out'"
INBOUND = "direction = 'in'"
BY_OPERATOR = "author_id IS NOT NULL"


def _partial(condition: str) -> dict:
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


REPORT_INDEXES = (
    # messages per day, channel and state; delivery per channel and campaign; failure reasons
    Index("ix_messages_report_out", Message.created_at, Message.channel_id, Message.status, Message.campaign_id,
          Message.author_id, **_partial(OUTBOUND)),
    # replies to campaign messages; a conversation's first message from the customer
    Index("ix_messages_report_in", Message.created_at, Message.conversation_id, Message.in_reply_to_id,
          **_partial(INBOUND)),
    # first responses and conversations handled per operator
    Index("ix_messages_report_operator", Message.created_at, Message.author_id, Message.conversation_id,
          Message.channel_id, **_partial(BY_OPERATOR)),
    Index("ix_conversations_created", Conversation.created_at, Conversation.channel_id),
    Index("ix_conversation_events_kind_at", ConversationEvent.kind, ConversationEvent.at,
          ConversationEvent.conversation_id, ConversationEvent.actor_id),
    Index("ix_audit_log_action_at", AuditEntry.action, AuditEntry.at),
)
