from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from contact_center.audit.models import AuditEntry


def record(
    session: Session, *, action: str, subject_type: str, subject_id: int | None,
    actor_id: int | None = None, via: str = "api", **detail: Any,
) -> None:
    """Add an audit entry to the current unit of work (it commits with the change it describes)."""
    session.add(AuditEntry(action=action, subject_type=subject_type, subject_id=subject_id,
                           actor_id=actor_id, via=via, detail=detail))
