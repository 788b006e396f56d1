from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base


class ErasedNumber(Base):
    """A number of an erased contact who had opted out, as a keyed hash (privacy/erased_numbers.py,
    its only writer): a send to it later is blocked by the flags its tombstone kept."""

    __tablename__ = "erased_numbers"
    number_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256 of the match key, hex
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
