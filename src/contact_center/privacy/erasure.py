"""An LGPD erasure: one customer's personal data removed from every table that holds it
(personal_data.TABLES) and their media files from the data directory, in one transaction.

The rows stay, blanked: the contact with a placeholder name, each message with its channel,
direction, status, timestamps and segments, so reports count what was sent and delivered as
before. Audit entries stay too (who did what remains), with the customer's data replaced. The
erasure is itself recorded, with who asked and why.

On SQLite, secure_delete (db.py) zeroes what the erasure overwrote, and once it has committed the
WAL is checkpointed and truncated, so no older copy of those pages stays in the -wal file."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from contact_center.audit.service import record
from contact_center.contacts.service import get_contact
from contact_center.db import truncate_wal
from contact_center.errors import InvalidInput
from contact_center.privacy.personal_data import TABLES, ErasureContext, find_subject
from contact_center.settings import Settings
from contact_center.translations import Words
from contact_center.unit_of_work import after_commit

log = logging.getLogger(__name__)
MAX_TEXT = 500


def _required(value: str | None, field: str, what: Words) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput("{field_name}: informe {what}; o pedido fica registrado na auditoria",
                           field_name=field, what=what, field=field)
    if len(value) > MAX_TEXT:
        raise InvalidInput("{field_name}: no máximo {most} caracteres (recebidos {length})", field=field,
                           field_name=field, most=MAX_TEXT, length=len(value))
    return value


def erase_contact(session: Session, contact_id: int, *, reason: str, requested_by: str,
                  settings: Settings) -> dict[str, int]:
    """Erase the contact's personal data; returns what was erased, counted. The caller commits;
    media files go once it has."""
    reason = _required(reason, "reason", Words('o motivo do pedido (por exemplo, "pedido do titular por e-mail")'))
    requested_by = _required(requested_by, "requested_by", Words("quem pediu a exclusão"))
    subject = find_subject(session, get_contact(session, contact_id))
    context = ErasureContext(settings=settings)
    for table in TABLES:
        if table.erase is not None:
            table.erase(session, subject, context)
    session.flush()
    # Who asked may be the customer themselves: their name does not come back through this entry.
    record(session, action="contact.erase", subject_type="contact", subject_id=contact_id,
           reason=subject.scrub(reason), requested_by=subject.scrub(requested_by), **context.counts)
    after_commit(session, lambda: truncate_wal(session))
    log.info("contact %d: personal data erased (%s)", contact_id,
             ", ".join(f"{key} {value}" for key, value in context.counts.items()))
    return context.counts
