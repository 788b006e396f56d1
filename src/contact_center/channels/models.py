from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow
from contact_center.providers.registry import is_sandbox_provider


class Channel(Base):
    """One way of reaching customers: an SMS account at Kolmeya, a WhatsApp number, a sandbox."""

    __tablename__ = "channels"
    __table_args__ = (CheckConstraint("kind IN ('sms', 'whatsapp')", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    # Write-only: never returned by the API nor logged (tokens, passwords).
    credentials: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Part of the callback URLs we hand the provider; identifies and authenticates its webhooks.
    webhook_secret: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Paused by the system when the provider refuses the account itself (a revoked token, a policy
    # block): nothing is sent, for anyone, until an admin fixes it; queued messages wait.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_sandbox(self) -> bool:
        return is_sandbox_provider(self.provider)


class WhatsAppTemplate(Base):
    """A message template approved (or not) at Meta for a WhatsApp channel's business account, as
    last synced: sends are validated against `definition` before they go out."""

    __tablename__ = "whatsapp_templates"
    __table_args__ = (UniqueConstraint("channel_id", "name", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    template_id: Mapped[str] = mapped_column(String(64))  # Meta's
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))  # APPROVED, REJECTED, PAUSED…
    category: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict] = mapped_column(JSON)  # the item as Meta lists it
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
