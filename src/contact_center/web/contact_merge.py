"""Merging duplicate contacts from the UI: "Mesclar com outro contato" on a contact's page (find the
other by name, phone, CPF or number, see the plan, confirm) and the "Possíveis duplicados" page
(the groups contacts.duplicates reports, each merged into the contact the operator keeps).

The merge itself is contacts.merge's, with the permission its API asks (supervisors and admins);
a refusal (the same contact, one that is gone, two CPFs) is shown on the page in Portuguese and
the whole request rolls back, so a group merged one contact after the other changes all or nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import User
from contact_center.contacts import duplicates, merge
from contact_center.contacts import service as contacts
from contact_center.contacts.documents import format_cpf
from contact_center.contacts.models import Contact
from contact_center.deps import DbSession
from contact_center.errors import Conflict, DomainError, InvalidInput
from contact_center.inbox.visibility import is_staff
from contact_center.routes import CheckedRoute
from contact_center.web import session as web_session
from contact_center.web.admin import SupervisorPageUser
from contact_center.web.rendering import render
from contact_center.web.session import PageUser

log = logging.getLogger(__name__)
router = APIRouter(prefix="/contacts", include_in_schema=False, route_class=CheckedRoute)

SEARCH_RESULTS = 20
# Contacts merged into one in a request: each is a plan and a merge, so a page has a budget.
MAX_OTHERS = 20
DUPLICATES_PAGE = 50


class Refusal(Exception):
    """Why the merge cannot be done, as an i18n key and its values (the page words it)."""

    def __init__(self, key: str, status_code: int = 422, **values):
        super().__init__(key)
        self.key, self.status_code, self.values = key, status_code, values


def _other_ids(raw: list[str], survivor_id: int) -> list[int]:
    if len(raw) > MAX_OTHERS:
        raise Refusal("merge.too_many", count=MAX_OTHERS)
    ids: list[int] = []
    for value in raw:
        value = value.strip()
        if not (value.isdigit() and len(value) <= 10):
            raise Refusal("merge.bad_id", value=value[:20])
        if int(value) == survivor_id:
            raise Refusal("merge.same", id=survivor_id)
        if int(value) not in ids:
            ids.append(int(value))
    return ids


def _others(session, survivor: Contact, ids: list[int]) -> list[Contact]:
    """The contacts to merge into `survivor`, in the order given; refused when one is not there or
    when two of them (or one and the survivor) have different CPFs, as the merge would refuse."""
    found = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    for contact_id in ids:
        if contact_id not in found:
            raise Refusal("merge.not_found", status_code=404, id=contact_id)
    others = [found[i] for i in ids]
    with_document = [c for c in (survivor, *others) if c.document]
    for contact in with_document[1:]:
        if contact.document != with_document[0].document:
            raise _documents_differ(with_document[0], contact)
    return others


def _documents_differ(first: Contact, second: Contact) -> Refusal:
    return Refusal("merge.documents_differ", status_code=409, first=first.name, first_id=first.id,
                   first_document=format_cpf(first.document), second=second.name, second_id=second.id,
                   second_document=format_cpf(second.document))


def _refusal_of(session, exc: DomainError, survivor_id: int, other_ids: list[int]) -> Refusal:
    """A refusal of the merge service, worded for the page (read again after the rollback)."""
    if isinstance(exc, Conflict):
        people = list(session.scalars(select(Contact).where(Contact.id.in_([survivor_id, *other_ids]),
                                                            Contact.document.is_not(None)).order_by(Contact.id)))
        pair = next(((a, b) for a in people for b in people if a.document != b.document), None)
        if pair is not None:
            return _documents_differ(*pair)
    if exc.status_code == 404 and exc.field == "other_id":
        missing = next((i for i in other_ids if session.get(Contact, i) is None), None)
        if missing is not None:
            return Refusal("merge.not_found", status_code=404, id=missing)
    return Refusal("merge.refused", status_code=exc.status_code, detail=exc)


def _candidates(session, survivor: Contact, search: str) -> list[Contact]:
    """The contacts the search finds (the list's search: name, email, CPF, any written phone), and
    the contact with that number when the search is one; never the survivor itself."""
    found: list[Contact] = []
    if search.isdigit() and len(search) <= 10:
        by_id = session.get(Contact, int(search))
        if by_id is not None:
            found.append(by_id)
    matches, _ = contacts.list_contacts(session, search=search, limit=SEARCH_RESULTS + 1, newest_first=True,
                                         count_cap=SEARCH_RESULTS + 1)
    found += [c for c in matches if c not in found]
    return [c for c in found if c.id != survivor.id][:SEARCH_RESULTS]


def _merge_page(request: Request, session, user: User, survivor: Contact, *, other_ids: list[int] | None = None,
                refusal: Refusal | None = None):
    search = (request.query_params.get("q") or "").strip()[:100]
    plans = []
    if refusal is None and other_ids:
        try:
            plans = [merge.plan(session, survivor.id, other.id) for other in _others(session, survivor, other_ids)]
        except Refusal as exc:
            refusal = exc
        except DomainError as exc:
            refusal = _refusal_of(session, exc, survivor.id, other_ids)
    status_code = refusal.status_code if refusal is not None else 200
    results = _candidates(session, survivor, search) if search and not plans else []
    # The survivor's CPF stays; without one it takes the first other's that has one.
    document = survivor.document or next((p.taken["document"] for p in plans if "document" in p.taken), None)
    return render(request, "contact_merge.html", user, status_code=status_code, contact=survivor, search=search,
                  results=results, plans=plans, document=document, refusal=refusal, active_nav="contacts")


@router.get("/{contact_id:int}/merge")
def merge_page(contact_id: int, request: Request, session: DbSession, user: SupervisorPageUser):
    """Find the other contact, then (`other=`, once or more) see what the merge moves."""
    survivor = contacts.get_contact(session, contact_id)
    try:
        other_ids = _other_ids(request.query_params.getlist("other"), survivor.id)
    except Refusal as refusal:
        return _merge_page(request, session, user, survivor, refusal=refusal)
    return _merge_page(request, session, user, survivor, other_ids=other_ids)


@router.post("/{contact_id:int}/merge")
async def merge_contacts(contact_id: int, request: Request, session: DbSession, user: SupervisorPageUser):
    """Merge every `other_id` into this contact, one after the other, in one transaction; then its page."""
    form = await request.form()
    web_session.check_csrf(request, form.get("csrf_token"))
    survivor = contacts.get_contact(session, contact_id)
    raw = [str(value) for value in form.getlist("other_id")]
    other_ids: list[int] = []
    try:
        other_ids = _other_ids(raw, survivor.id)
        if not other_ids:
            raise Refusal("merge.pick_other")
        for other_id in other_ids:
            merge.merge(session, survivor.id, other_id, actor=user, via="ui")
    except (Refusal, DomainError) as exc:
        session.rollback()
        survivor = contacts.get_contact(session, contact_id)
        refusal = exc if isinstance(exc, Refusal) else _refusal_of(session, exc, survivor.id, other_ids)
        log.info("contact merge into %d refused for %s: %s", contact_id, user.username, refusal.key)
        return _merge_page(request, session, user, survivor, refusal=refusal)
    log.info("contacts %s merged into contact %d by %s (ui)", ", ".join(map(str, other_ids)), survivor.id,
             user.username)
    return RedirectResponse(f"/contacts/{survivor.id}?{urlencode({'merged': ','.join(map(str, other_ids))})}",
                            status_code=303)


def merged_notice(session, contact: Contact, written: str | None) -> list[dict]:
    """What the contact's page says after a merge (`?merged=<ids>`): read from the merge's audit
    entries, so a link cannot make the page claim a merge that did not happen."""
    ids = {int(part) for part in (written or "").split(",")[:MAX_OTHERS] if part.isdigit() and len(part) <= 10}
    if not ids:
        return []
    entries = session.scalars(select(AuditEntry).where(
        AuditEntry.subject_type == "contact", AuditEntry.subject_id == contact.id,
        AuditEntry.action == "contact.merge").order_by(AuditEntry.id.desc()).limit(MAX_OTHERS * 2))
    found = {}
    for entry in entries:
        merged_id = entry.detail.get("merged_id")
        if merged_id in ids and merged_id not in found:
            moved = entry.detail.get("moved") or {}
            found[merged_id] = {"id": merged_id, "name": (entry.detail.get("merged") or {}).get("name") or "",
                                "messages": moved.get("messages", 0), "conversations": moved.get("conversations", 0)}
    return [found[i] for i in sorted(found)]


# --- likely duplicates ------------------------------------------------------------------------------

@router.get("/duplicates")
def duplicates_page(request: Request, session: DbSession, user: PageUser):
    """The groups `contact-center contacts duplicates` lists, a page at a time (`after=`)."""
    after = (request.query_params.get("after") or "").strip()[:200] or None
    groups, next_after = duplicates.report(session, after=after, limit=DUPLICATES_PAGE)
    return render(request, "contact_duplicates.html", user, groups=groups, next_after=next_after, paged=bool(after),
                  staff=is_staff(user), max_others=MAX_OTHERS, active_nav="contacts")


@router.get("/duplicates/merge")
def duplicates_merge(request: Request, session: DbSession, user: SupervisorPageUser):
    """A group's "Mesclar" form: the contact kept (`survivor`, the oldest unless another was
    chosen) and the group's others, to the plan on the kept contact's merge page."""
    survivor = (request.query_params.get("survivor") or "").strip()
    group = [value.strip() for value in request.query_params.getlist("contact")][:MAX_OTHERS + 1]
    if not (survivor.isdigit() and len(survivor) <= 10 and survivor in group):
        raise InvalidInput("survivor: choose the contact of the group that stays", field="survivor")
    others = [value for value in group if value != survivor]
    return RedirectResponse(f"/contacts/{survivor}/merge?{urlencode([('other', value) for value in others])}",
                            status_code=303)
