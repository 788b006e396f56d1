"""The audit log over REST, for supervisors and admins: read only. There is no route that changes
or deletes an entry (and the database refuses it too)."""

from __future__ import annotations

from datetime import datetime

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from contact_center.audit import queries
from contact_center.audit.models import AuditEntry
from contact_center.audit.schemas import AuditEntryOut, AuditPage
from contact_center.audit.service import record
from contact_center.deps import DbSession
from contact_center.errors import NotFound
from contact_center.routes import CheckedRoute
from contact_center.web.session import SupervisorOperator

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=CheckedRoute)


def _filter(session: DbSession, actor: str | None = Query(None, description="A user name."),
            actor_id: int | None = Query(None, ge=1, le=2_147_483_647),
            actor_kind: str | None = Query(None, description="user, token, campaign or system."),
            action: str | None = Query(None, description="e.g. contact.update, sms.send."),
            subject_type: str | None = Query(None, description="e.g. contact, user, channel, campaign."),
            subject_id: int | None = Query(None, ge=0, le=2_147_483_647),
            since: str | None = Query(None, description="First day, YYYY-MM-DD (Brasília time)."),
            until: str | None = Query(None, description="Last day, YYYY-MM-DD, included.")) -> queries.AuditFilter:
    return queries.parse_filter(session, actor=actor, actor_id=actor_id, actor_kind=actor_kind, action=action,
                                subject_type=subject_type, subject_id=subject_id, since=since, until=until)


Filter = Annotated[queries.AuditFilter, Depends(_filter)]


def entries_out(session, entries: list[AuditEntry]) -> list[AuditEntryOut]:
    labels = queries.actor_labels(session, entries)
    return [AuditEntryOut.model_validate({**{c: getattr(e, c) for c in AuditEntryOut.model_fields if c != "actor"},
                                          "actor": labels[e.id]}) for e in entries]


@router.get("", response_model=AuditPage)
def list_entries(session: DbSession, _: SupervisorOperator, f: Filter,
                 before_id: int | None = Query(None, description="Only entries older than this id (the next page)."),
                 limit: int = Query(50, ge=1, le=queries.MAX_PAGE)):
    """Entries newest first, filtered by who, what, when and on what."""
    entries = queries.page(session, f, before_id=before_id, limit=limit)
    return AuditPage(items=entries_out(session, entries),
                     next_before_id=entries[-1].id if len(entries) == limit else None)


@router.get(".csv")
def export_entries(session: DbSession, user: SupervisorOperator, f: Filter, request: Request):
    """Every entry of the filter as CSV, newest first. The export is itself recorded, with its filter."""
    record(session, action="audit.export", subject_type="audit", subject_id=None, actor_id=user.id,
           filter={key: value for key, value in request.query_params.items() if value})
    session.commit()
    factory = request.app.state.session_factory

    def rows():  # on a session of its own: the request's is gone once this streams
        with factory() as reader:
            yield from queries.csv_rows(reader, f)

    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="auditoria-{stamp}.csv"'})


@router.get("/{entry_id}", response_model=AuditEntryOut)
def get_entry(entry_id: int, session: DbSession, _: SupervisorOperator):
    entry = session.get(AuditEntry, entry_id)
    if entry is None:
        raise NotFound("nenhuma entrada de auditoria com id {entry_id}", entry_id=entry_id)
    return entries_out(session, [entry])[0]
