from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contact_center.audit.models import AuditEntry


def record(
    session: Session, *, action: str, subject_type: str, subject_id: int | None,
    actor_id: int | None = None, via: str = "api", **detail: Any,
) -> None:
    """Add an audit entry to the current unit of work (it commits with the change it describes)."""
    session.add(AuditEntry(action=action, subject_type=subject_type, subject_id=subject_id,
                           actor_id=actor_id, via=via, detail=detail))


def latest(session: Session, *, subject_type: str, subject_id: int, actions: list[str]) -> dict[str, AuditEntry]:
    """The newest entry of each of these actions about one subject (action -> entry)."""
    newest = (select(AuditEntry.action, func.max(AuditEntry.id).label("id"))
              .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id,
                     AuditEntry.action.in_(actions))
              .group_by(AuditEntry.action).subquery())
    found = session.scalars(select(AuditEntry).join(newest, newest.c.id == AuditEntry.id))
    return {entry.action: entry for entry in found}
