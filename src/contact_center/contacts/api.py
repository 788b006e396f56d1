from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from contact_center.contacts import duplicates, fields, merge, service, tags
from contact_center.contacts.duplicates import refuse_phone_duplicates
from contact_center.contacts.schemas import (
    ContactCreate, ContactOut, ContactPage, ContactUpdate, DuplicatePage, MergeIn, MergeOut, MergePlanOut, TagCount,
)
from contact_center.deps import AgentUser, DbSession, SupervisorUser
from contact_center.errors import NotFound
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/api/contacts", tags=["contacts"], route_class=CheckedRoute)


@router.get("", response_model=ContactPage)
def list_contacts(
    request: Request,
    session: DbSession,
    _: AgentUser,
    search: str | None = Query(None, description="Name or email fragment, CPF, or a phone in any written form."),
    tag: list[str] = Query([], description="Only contacts with this tag (any case or accents); repeat it for "
                           "contacts that have all of them."),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=service.MAX_PAGE),
):
    """Also filters on the business's fields: `field.KEY=value` (equal), `field.KEY_from` /
    `field.KEY_min` (at least) and `field.KEY_to` / `field.KEY_max` (at most) for integer, money
    and date fields, e.g. `?field.vencimento_from=01/11/2025&field.vencimento_to=30/11/2025&field.valor_parcela_min=1000`.
    A list filtered on fields is ordered by the first field filtered (a closed range first), then
    id, and counts up to 1,000 matches (`total_is_lower_bound` says when there are more)."""
    field_filters = fields.parse_filters(session, request.query_params.multi_items())
    items, total = service.list_contacts(session, search=search, tags_=tag, offset=offset, limit=limit,
                                         field_filters=field_filters)
    more = bool(field_filters) and total > fields.COUNT_LIMIT
    return ContactPage(items=items, total=min(total, fields.COUNT_LIMIT) if more else total,
                       total_is_lower_bound=more, offset=offset, limit=limit)


@router.get("/by-phone", response_model=ContactOut)
def find_by_phone(session: DbSession, _: AgentUser, phone: str = Query(..., min_length=1)):
    contact = service.find_by_phone(session, phone)
    if contact is None:
        raise NotFound("no contact has the phone '{phone}'", phone=phone)
    return contact


@router.get("/tags", response_model=list[TagCount])
def list_tags(session: DbSession, _: AgentUser):
    """Every tag in use, as first written, with how many contacts have it (most used first)."""
    return [TagCount(name=name, contacts=count) for name, count in tags.counts(session)]


@router.get("/duplicates", response_model=DuplicatePage)
def list_duplicates(
    session: DbSession,
    _: AgentUser,
    after: str | None = Query(None, description="The previous page's next_after."),
    limit: int = Query(50, ge=1, le=duplicates.MAX_PAGE),
):
    """Groups of likely duplicate contacts (the same phone, email or WhatsApp number), a page at a
    time; merge them with POST /api/contacts/{survivor_id}/merge."""
    groups, next_after = duplicates.report(session, after=after, limit=limit)
    return {"groups": [{"reason": g.reason, "value": g.value,
                        "contacts": [{"id": i, "name": name} for i, name in g.contacts]} for g in groups],
            "next_after": next_after}


@router.post("", response_model=ContactOut, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "Another contact has this CPF, or (unless create_anyway) one of "
                                             "these phones: `error.code` is `duplicate_contact`, `error.contact_id` "
                                             "names it."}})
def create_contact(body: ContactCreate, session: DbSession, _: AgentUser):
    data = body.model_dump()
    if not data.pop("create_anyway"):
        refuse_phone_duplicates(session, data)
    return service.create_contact(session, data)


@router.get("/{contact_id}", response_model=ContactOut)
def get_contact(contact_id: int, session: DbSession, _: AgentUser):
    return service.get_contact(session, contact_id)


@router.patch("/{contact_id}", response_model=ContactOut)
def update_contact(contact_id: int, body: ContactUpdate, session: DbSession, _: AgentUser):
    contact = service.get_contact(session, contact_id)
    return service.update_contact(session, contact, body.model_dump(exclude_unset=True))


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_contact(contact_id: int, session: DbSession, _: SupervisorUser):
    service.delete_contact(session, contact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{survivor_id}/merge", response_model=MergePlanOut)
def merge_plan(survivor_id: int, session: DbSession, _: SupervisorUser,
               other_id: int = Query(..., ge=1, description="The contact that would be merged into this one.")):
    """What merging `other_id` into this contact would move and change; changes nothing."""
    return merge.plan(session, survivor_id, other_id).as_dict()


@router.post("/{survivor_id}/merge", response_model=MergeOut)
def merge_contacts(survivor_id: int, body: MergeIn, session: DbSession, user: SupervisorUser):
    """Merge `other_id` into this contact: its messages, conversations, tags and identifiers move
    here, empty fields are filled from it, opt-outs are combined, and it is removed (audited)."""
    result = merge.merge(session, survivor_id, body.other_id, actor=user, via="api")
    return {**result.as_dict(), "contact": service.get_contact(session, survivor_id)}
