from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow

# Only a pending status is looked up by the ids it names (events.pending_for, whose query states
# this same condition so that both databases use these indexes). An applied one then costs no
# entry in them: a status slice would otherwise write each at a random place.
PENDING = "outcome = 'pending'"


class WebhookEvent(Base):
    """Every provider callback, stored raw before it is applied; (source, external_id) makes replays no-ops."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_webhook_events_pending", "outcome", "received_at"),
        *(Index(f"ix_webhook_events_{column}", column, sqlite_where=text(PENDING), postgresql_where=text(PENDING))
          for column in ("match_reference", "match_provider_id")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))  # e.g. kolmeya.reply, kolmeya.status
    external_id: Mapped[str] = mapped_column(String(128))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    payload: Mapped[str] = mapped_column(Text)
    # applied | pending (waits for its message) | rejected (malformed) | error (will be retried)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    match_reference: Mapped[str | None] = mapped_column(String(64))
    match_provider_id: Mapped[str | None] = mapped_column(String(128))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
