"""An LGPD access request: everything we hold about one customer, as a ZIP of JSON files (one per
table, as personal_data.TABLES lists them) and their media files. Only their rows: a campaign
appears as its name and state, never its audience."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from contact_center.audit.service import record
from contact_center.contacts.service import get_contact
from contact_center.db import utcnow
from contact_center.messaging.media import store_for
from contact_center.messaging.models import Message
from contact_center.privacy.personal_data import TABLES, find_subject
from contact_center.settings import Settings


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _as_dict(row) -> dict:
    """A selected row as JSON-ready values: every column of an ORM object, or the columns selected."""
    if len(row) == 1 and hasattr(row[0], "__table__"):
        return {column.key: _plain(getattr(row[0], column.key)) for column in row[0].__table__.columns}
    return {key: _plain(value) for key, value in row._mapping.items()}


def export_contact(session: Session, contact_id: int, settings: Settings) -> tuple[bytes, dict[str, int]]:
    """The ZIP's bytes and how many rows each table gave; the export is recorded in the audit log."""
    subject = find_subject(session, get_contact(session, contact_id))
    counts: dict[str, int] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES:
            rows = [_as_dict(row) for row in session.execute(table.rows(subject))]
            counts[table.name] = len(rows)
            archive.writestr(f"{table.name}.json", json.dumps(rows, ensure_ascii=False, indent=2))
        counts["media_files"] = _add_media(archive, session, subject.message_ids, settings)
        archive.writestr("LEIA-ME.txt", _readme(contact_id, counts))
    record(session, action="contact.data_export", subject_type="contact", subject_id=contact_id, **counts)
    return buffer.getvalue(), counts


def _add_media(archive: zipfile.ZipFile, session: Session, message_ids: list[int], settings: Settings) -> int:
    store, added = store_for(settings), 0
    for message in session.query(Message).filter(Message.id.in_(message_ids or [-1]), Message.content.is_not(None)):
        stored = ((message.content or {}).get("media") or {}).get("stored") or {}
        if not stored.get("sha256"):
            continue
        path: Path = store.path_for(stored["sha256"], stored.get("mime_type") or "application/octet-stream")
        if path.is_file():
            archive.write(path, f"media/message-{message.id}{path.suffix}")
            added += 1
    return added


def _readme(contact_id: int, counts: dict[str, int]) -> str:
    lines = [f"Dados do contato #{contact_id}, exportados em {utcnow().isoformat()} (LGPD, art. 18).", "",
             "Cada arquivo .json traz os registros de uma tabela; media/ traz os arquivos recebidos e enviados.", ""]
    lines += [f"{name}: {count}" for name, count in counts.items()]
    return "\n".join(lines) + "\n"
