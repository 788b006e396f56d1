from __future__ import annotations

from contact_center.providers.registry import is_sandbox_provider

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_sandbox(self) -> bool:
        return is_sandbox_provider(self.provider)
