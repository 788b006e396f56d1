from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from contact_center.db import Base, UTCDateTime, utcnow

ACTOR_KINDS = ("user", "token", "campaign", "system")


class AuditEntry(Base):
    """Who did what to what, when and from where. Append-only: written only by audit.service.record,
    never updated or deleted; triggers on both databases refuse it (migration 0013). The one
    exception is an LGPD erasure, which replaces a customer's personal data in `summary` and
    `detail` and stamps `redacted_at` (audit.service.redact): the law asks that their data go, the
    log that who did what stays, and it does."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id", "id"),
        # The page and API filter by one of these and read newest first: each index serves its filter.
        Index("ix_audit_log_actor", "actor_id", "id"),
        Index("ix_audit_log_action", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(8), default="system", server_default="system")  # ACTOR_KINDS
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    token_id: Mapped[int | None]  # the API token used, when the actor is one (no FK: tokens may go, entries stay)
    campaign_id: Mapped[int | None]  # the campaign that acted (its messages)
    via: Mapped[str] = mapped_column(String(16))  # api, cli, ui, webhook, job
    client_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None]
    summary: Mapped[str] = mapped_column(String(300), default="", server_default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When an LGPD erasure last removed personal data from `summary` and `detail`.
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
