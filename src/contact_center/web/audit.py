"""The audit log page (supervisors and admins): filter by who, what, when and on what, newest
first, a page at a time; the CSV link exports the same filter through the audit API."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy import select

from contact_center.audit import queries
from contact_center.audit.models import ACTOR_KINDS
from contact_center.audit.service import ACTIONS
from contact_center.auth.models import User
from contact_center.deps import DbSession
from contact_center.errors import InvalidInput
from contact_center.routes import CheckedRoute
from contact_center.web.admin import SupervisorPageUser
from contact_center.web.rendering import render

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)
PAGE = 50
FIELDS = ("actor", "actor_kind", "action", "subject_type", "subject_id", "since", "until")
SUBJECT_TYPES = ("user", "token", "contact", "channel", "template", "campaign", "message", "audit")


@router.get("/audit")
def audit_page(request: Request, session: DbSession, user: SupervisorPageUser):
    form = {name: (request.query_params.get(name) or "").strip() for name in FIELDS}
    before = request.query_params.get("before_id", "")
    error, entries = None, []
    try:
        subject_id = _whole(form["subject_id"], "subject_id")
        f = queries.parse_filter(session, actor=form["actor"], actor_kind=form["actor_kind"], action=form["action"],
                                 subject_type=form["subject_type"], subject_id=subject_id, since=form["since"],
                                 until=form["until"])
        entries = queries.page(session, f, before_id=_whole(before, "before_id"), limit=PAGE)
    except InvalidInput as exc:
        error = exc
    chosen = {name: value for name, value in form.items() if value}
    filter_query = urlencode(chosen)
    older = f"/audit?{urlencode({**chosen, 'before_id': entries[-1].id})}" if len(entries) == PAGE else None
    return render(request, "audit.html", user, status_code=error.status_code if error else 200,
                  active_nav="audit", error=error, form=form, entries=entries,
                  actors=queries.actor_labels(session, entries), older=older,
                  newest=f"/audit?{filter_query}" if before else None,
                  csv_url=f"/api/audit.csv?{filter_query}", actions=ACTIONS, actor_kinds=ACTOR_KINDS,
                  subject_types=SUBJECT_TYPES, usernames=list(session.scalars(select(User.username)
                                                                               .order_by(User.username))))


def _whole(raw: str, field: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or int(raw) > 2_147_483_647:
        raise InvalidInput("{field_name} deve ser um número inteiro positivo, como 42; recebido '{raw}'",
                           field_name=field, raw=raw, field=field)
    return int(raw)
