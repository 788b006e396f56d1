from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor: str  # the user name (and token name) or "sistema"
    token_id: int | None
    campaign_id: int | None
    via: str
    client_address: str | None
    action: str
    subject_type: str
    subject_id: int | None
    summary: str
    detail: dict[str, Any]
    redacted_at: datetime | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    # Pass as before_id for the next (older) page; null on the last one.
    next_before_id: int | None
