from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime


class OdooSyncState(Base):
    """Where the partner sync stands: one row (id 1), written only by odoo/sync.py.

    The mark is the (write_date, id) of the last partner whose batch was committed; the next
    incremental sync asks Odoo for partners after it. A failed run never moves it past what it stored.
    """

    __tablename__ = "odoo_sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    mark_write_date: Mapped[str | None] = mapped_column(String(32))  # as Odoo writes it: '2026-12-01 20:15:00'
    mark_partner_id: Mapped[int | None] = mapped_column()
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # While a run goes on: until when it holds the sync (renewed each page; a killed run's lapses).
    running_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the last run did (so far, while it runs).
    last_read: Mapped[int] = mapped_column(default=0)
    last_created: Mapped[int] = mapped_column(default=0)
    last_updated: Mapped[int] = mapped_column(default=0)
    last_unchanged: Mapped[int] = mapped_column(default=0)
    last_rejected: Mapped[int] = mapped_column(default=0)
    last_skipped_erased: Mapped[int] = mapped_column(default=0, server_default="0")  # partners erased here (LGPD)
