from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow


class Conversation(Base):
    """A customer's phone on a channel. The contact may be unknown until someone links it."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("channel_id", "phone_key"),
        CheckConstraint("status IN ('new', 'assigned', 'done')", name="status_known"),
        Index("ix_conversations_status_last_activity", "status", "last_activity_at"),
        # The inbox lists newest activity first: "all", and "mine" / one operator's.
        Index("ix_conversations_last_activity", "last_activity_at", "id"),
        Index("ix_conversations_assignee_last_activity", "assignee_id", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))  # empty for a WhatsApp user known only by id
    # The phone's match key, or "wa:" + WhatsApp's user id for a customer who shares no phone.
    phone_key: Mapped[str] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16), default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # WhatsApp: free text may be sent until then (24 h after the customer's last message).
    window_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The window_closes_at of the window a closing reminder went out for (messaging/window_reminder.py).
    reminded_window_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def recipient(self) -> str:
        """Whom its messages go to: the phone, or (its key) the WhatsApp user who shares none."""
        return self.phone_e164 or self.phone_key


EVENT_KINDS = ("taken", "released", "transferred", "assigned", "closed", "reopened", "contact_linked")


class ConversationEvent(Base):
    """A status change in a conversation's timeline: "Ana took the conversation", "closed by João"."""

    __tablename__ = "conversation_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('taken', 'released', 'transferred', 'assigned', 'closed', 'reopened', 'contact_linked')",
            name="kind_known",
        ),
        Index("ix_conversation_events_conversation_at", "conversation_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who did it; None when the system did (a customer's message reopening the conversation).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The operator the conversation went to (taken, transferred, assigned), or came from (released).
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    previous_assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))


class QuickReply(Base):
    """A canned answer operators insert into the composer with one click (plain text, no variables)."""

    __tablename__ = "quick_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(60), unique=True)
    body: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
