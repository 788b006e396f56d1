from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow


class Contact(Base):
    """A customer. Each phone is kept as written and as E.164 plus a match key (see phones.py)."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    mobile: Mapped[str | None] = mapped_column(String(64))
    mobile_e164: Mapped[str | None] = mapped_column(String(20))
    mobile_key: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    # CPF, digits only; unique when present so imports can update by document.
    document: Mapped[str | None] = mapped_column(String(14), unique=True)
    notes: Mapped[str | None] = mapped_column(Text)
    opt_out_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_out_whatsapp: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
