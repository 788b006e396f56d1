from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
                        false, text)
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow

FINAL_FAILURES = ("failed", "rejected", "expired", "blocked")
IN_FLIGHT = ("scheduled", "queued", "sending", "unknown")  # not with the provider for sure yet
IN_FLIGHT_SQL = "status IN ('scheduled', 'queued', 'sending', 'unknown')"
# Not final yet: what the sweeper, the status checks and the reconciliations look for by status.
WAITING_SQL = "status IN ('scheduled', 'queued', 'sending', 'unknown', 'sent')"
WAITING = text(WAITING_SQL)  # stated in a query by status, it lets SQLite use ix_messages_waiting
# Statuses only move forward; delivered only moves to read, read only to played (a voice note heard). `unknown`: handed to the provider, or
# maybe: what became of it is asked of the provider before anything is sent again.
STATE_RANK = {"scheduled": 0, "queued": 0, "sending": 1, "unknown": 2, "sent": 3, "delivered": 4, "read": 5, "played": 6,
              "failed": 4, "rejected": 4, "expired": 4, "blocked": 4, "cancelled": 4, "received": 0}
# The timestamp column each status stamps.
STATE_TIMESTAMP = {"queued": "queued_at", "sent": "sent_at", "delivered": "delivered_at", "read": "read_at",
                   "played": "played_at",
                   "failed": "failed_at", "rejected": "failed_at", "expired": "failed_at", "blocked": "failed_at"}


def moves_forward(current: str, new: str, *, current_inferred: bool = False) -> bool:
    """Whether a status the provider reports replaces the message's current one."""
    if current in ("received", "cancelled"):  # a cancelled message never reached the provider
        return False
    if current in FINAL_FAILURES:
        # A failure the provider stated is final; one we only concluded gives way to its word.
        return current_inferred
    return STATE_RANK[new] > STATE_RANK[current]


class Message(Base):
    """Every message, whatever its channel, direction or origin: one timeline, no syncing."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "provider_message_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction_known"),
        # The sweeper, the status checks, the reconciliations and /metrics' in-flight counts find
        # what waits by this, whose condition their queries state (SQLite uses a partial index only
        # for its own words): a delivered message leaves it, so its later reports (read, played)
        # write in no status index.
        Index("ix_messages_waiting", "status", "channel_id", "queued_at", sqlite_where=text(WAITING_SQL),
              postgresql_where=text(WAITING_SQL)),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        Index("ix_messages_contact_created", "contact_id", "created_at"),
        # A campaign releases its next `scheduled` batch and counts its progress by this; a
        # message of no campaign has no entry (every query names its campaign).
        Index("ix_messages_campaign_status", "campaign_id", "status", "id",
              sqlite_where=text("campaign_id IS NOT NULL"), postgresql_where=text("campaign_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Ours, unique, sent to the provider with the message so results and callbacks find it again.
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(3))
    origin: Mapped[str] = mapped_column(String(16))  # composer, api, cli, campaign, webhook, poll, fallback, reminder, opt_out
    phone: Mapped[str] = mapped_column(String(64))
    phone_e164: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)  # the text, or what an operator reads for other content
    # text, image, audio, voice, video, document, sticker, location, contacts, choice, reaction,
    # template, system, unsupported…; `content` holds what is not text (media, template, place).
    content_type: Mapped[str] = mapped_column(String(16), default="text", server_default="text")
    content: Mapped[dict | None] = mapped_column(JSON)
    # A customer's media file: pending (its metadata stored, the file to fetch), stored, failed.
    media_state: Mapped[str | None] = mapped_column(String(8), index=True)
    # The same text sent again by SMS after this WhatsApp message could not be delivered.
    fallback_of_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The status is our conclusion, not the provider's word: later evidence may still replace it.
    status_inferred: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    provider_message_id: Mapped[str | None] = mapped_column(String(128))  # WhatsApp's wamids run long
    provider_request_id: Mapped[str | None] = mapped_column(String(64))
    # Ours, for the request that carried the message: the provider can be asked about it by this.
    batch_reference: Mapped[str | None] = mapped_column(String(40), index=True)
    provider_status_code: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    played_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


ATTEMPT_OUTCOMES = ("sent", "retry", "failed", "unknown", "held")


class MessageAttempt(Base):
    """One try at sending a message, as it went: when, what the provider answered, what comes next.
    Written only by messaging/attempts.py, in the transaction that applies the outcome."""

    __tablename__ = "message_attempts"
    __table_args__ = (
        CheckConstraint("outcome IN ('sent', 'retry', 'failed', 'unknown', 'held')", name="outcome_known"),
        Index("ix_message_attempts_message_id", "message_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # the message's attempt count this try was (or waits to be)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # sent | retry (queued again) | failed | unknown (the provider is asked first) | held (not sent:
    # the channel's rate limit or a pause made it wait; the try does not count)
    outcome: Mapped[str] = mapped_column(String(8))
    http_status: Mapped[int | None] = mapped_column(Integer)
    provider_code: Mapped[int | None] = mapped_column(Integer)  # the provider's own error code (WhatsApp's)
    reason: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the next try, or the question
    batch_reference: Mapped[str | None] = mapped_column(String(40))
