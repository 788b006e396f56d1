"""Reading the audit log: filters, pages newest first, and the CSV of a filter.

A log of millions of entries is read by keyset (`before_id`), never by offset, and each filter
has an index ending in `id` (actor, action, subject: see models.py), so a page reads only its own
rows. A date range becomes an id range first (entries are appended in time order), found through
the index on `at`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.audit.models import ACTOR_KINDS, AuditEntry
from contact_center.auth.models import ApiToken, User
from contact_center.errors import InvalidInput

MAX_PAGE = 200
BRASILIA = timezone(timedelta(hours=-3), "BRT")  # the days people filter by (no daylight saving since 2019)
CSV_COLUMNS = ("id", "at", "actor_kind", "actor", "token", "campaign_id", "via", "client_address", "action",
               "subject_type", "subject_id", "summary")


@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    actor_kind: str | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def _day(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput("data inválida em {field_name}: '{raw}'; use AAAA-MM-DD, como 2026-12-01",
                           field_name=field, raw=raw,
                           field=field) from None


def parse_filter(session: Session, *, actor: str | None = None, actor_id: int | None = None,
                 actor_kind: str | None = None, action: str | None = None, subject_type: str | None = None,
                 subject_id: int | None = None, since: str | None = None, until: str | None = None) -> AuditFilter:
    """The filter a page or API call asks for; a bad value is an InvalidInput naming it.
    `actor` is a user name; dates are days in Brasília time, `until` included."""
    if actor and actor.strip():
        found = session.scalar(select(User.id).where(User.username == actor.strip().lower()))
        if found is None:
            raise InvalidInput("nenhum operador com o usuário '{username}'", field="actor", username=actor.strip())
        if actor_id is not None and actor_id != found:
            raise InvalidInput("actor e actor_id nomeiam operadores diferentes; use um só", field="actor")
        actor_id = found
    actor_kind = (actor_kind or "").strip() or None
    if actor_kind is not None and actor_kind not in ACTOR_KINDS:
        raise InvalidInput("tipo de autor desconhecido: '{actor_kind}'; use um de {kinds}", field="actor_kind",
                           actor_kind=actor_kind, kinds=", ".join(ACTOR_KINDS))
    subject_type = (subject_type or "").strip() or None
    if subject_id is not None and subject_type is None:
        raise InvalidInput("subject_id precisa de subject_type (por exemplo contact, user, channel)",
                           field="subject_type")
    start = datetime.combine(_day(since, "since"), time(), BRASILIA) if since and since.strip() else None
    end = (datetime.combine(_day(until, "until") + timedelta(days=1), time(), BRASILIA)
           if until and until.strip() else None)
    if start and end and end <= start:
        raise InvalidInput("a data final (until) é anterior à inicial (since)", field="until")
    return AuditFilter(actor_id=actor_id, actor_kind=actor_kind, action=(action or "").strip() or None,
                       subject_type=subject_type, subject_id=subject_id, since=start, until=end)


def _query(session: Session, f: AuditFilter):
    query = select(AuditEntry)
    if f.actor_id is not None:
        query = query.where(AuditEntry.actor_id == f.actor_id)
    if f.actor_kind is not None:
        query = query.where(AuditEntry.actor_kind == f.actor_kind)
    if f.action is not None:
        query = query.where(AuditEntry.action == f.action)
    if f.subject_type is not None:
        query = query.where(AuditEntry.subject_type == f.subject_type)
    if f.subject_id is not None:
        query = query.where(AuditEntry.subject_id == f.subject_id)
    if f.since is not None:
        first = session.scalar(select(AuditEntry.id).where(AuditEntry.at >= f.since)
                               .order_by(AuditEntry.at, AuditEntry.id).limit(1))
        query = query.where(AuditEntry.id >= (first if first is not None else 1 << 62), AuditEntry.at >= f.since)
    if f.until is not None:
        last = session.scalar(select(AuditEntry.id).where(AuditEntry.at < f.until)
                              .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(1))
        query = query.where(AuditEntry.id <= (last if last is not None else 0), AuditEntry.at < f.until)
    return query


def page(session: Session, f: AuditFilter, *, before_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
    """Up to `limit` entries matching `f`, newest first, older than `before_id` when given."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit deve estar entre 1 e {MAX_PAGE}", MAX_PAGE=MAX_PAGE, field="limit")
    query = _query(session, f)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def actor_labels(session: Session, entries: list[AuditEntry]) -> dict[int, str]:
    """Each entry's actor as people read it: the user name, with the API token's name when one acted."""
    user_ids = {e.actor_id for e in entries if e.actor_id is not None}
    token_ids = {e.token_id for e in entries if e.token_id is not None}
    users = {row[0]: row[1] for row in session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))} \
        if user_ids else {}
    tokens = {row[0]: row[1] for row in session.execute(select(ApiToken.id, ApiToken.name)
                                                        .where(ApiToken.id.in_(token_ids)))} if token_ids else {}
    labels = {}
    for e in entries:
        label = users.get(e.actor_id, f"#{e.actor_id}") if e.actor_id is not None else ""
        if e.token_id is not None:
            label += f" (token {tokens.get(e.token_id, e.token_id)})"
        if e.campaign_id is not None and e.actor_kind == "campaign":
            label = f"campanha #{e.campaign_id}" + (f" · {label}" if label else "")
        labels[e.id] = label or "sistema"
    return labels


def csv_rows(session: Session, f: AuditFilter) -> Iterator[str]:
    """The whole filter as CSV text, newest first, a chunk at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    before = None
    while True:
        entries = page(session, f, before_id=before, limit=MAX_PAGE)
        labels = actor_labels(session, entries)
        for e in entries:
            writer.writerow([e.id, e.at.isoformat(), e.actor_kind, labels[e.id], e.token_id or "",
                             e.campaign_id or "", e.via, e.client_address or "", e.action, e.subject_type,
                             "" if e.subject_id is None else e.subject_id, e.summary])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(entries) < MAX_PAGE:
            return
        before = entries[-1].id
