from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow

# building: its recipients are being stored; ready: stored, not started; running: sending (or
# waiting for its start, its send window or its throughput); paused; completed; cancelled;
# failed: its audience could not be read.
STATUSES = ("building", "ready", "running", "paused", "completed", "cancelled", "failed")


class Campaign(Base):
    """A bulk send: one message row per recipient, so progress and recovery come from the messages.

    Its messages are stored `scheduled`; the campaign's pump releases them to the dispatch queue
    (`queued`) while it runs, inside its send window and its throughput, so pausing or cancelling
    stops what has not been released, and a crash loses nothing: the rows are the state."""

    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(f"status IN {STATUSES}", name="status_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    body_template: Mapped[str] = mapped_column(Text)  # the text as sent, even if the template changes later
    # WhatsApp: the approved template it sends, and its parameters as templates of contact fields
    # ({"body": ["{{ contact.first_name }}", ...]} or named {"body": {"nome": "..."}}, "header", "buttons").
    whatsapp_template_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_templates.id",
                                                                        ondelete="SET NULL"))
    template_parameters: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="building")
    # Who it goes to, as asked: {"contact_ids": [...]} | {"search": "..."} | {"csv": "..."} | {"tag": "..."}.
    audience: Mapped[dict | None] = mapped_column(JSON)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: as soon as it is started
    send_window: Mapped[dict | None] = mapped_column(JSON)  # campaigns.windows.SendWindow as JSON
    per_minute: Mapped[int | None] = mapped_column(Integer)  # throughput cap; None: as fast as the channel goes
    start_when_built: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)  # messages stored (blocked ones included)
    skipped: Mapped[int] = mapped_column(Integer, default=0)  # recipients not stored: see skip_reasons
    skip_reasons: Mapped[dict | None] = mapped_column(JSON)  # reason → count
    cancelled: Mapped[int] = mapped_column(Integer, default=0)  # messages the cancel stopped
    waiting_reason: Mapped[str | None] = mapped_column(String(300))  # why a running campaign sends nothing now
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
