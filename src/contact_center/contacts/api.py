from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from contact_center.contacts import fields, service
from contact_center.contacts.schemas import ContactCreate, ContactOut, ContactPage, ContactUpdate
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
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=service.MAX_PAGE),
):
    """Also filters on the business's fields: `field.KEY=value` (equal), `field.KEY_from` /
    `field.KEY_min` (at least) and `field.KEY_to` / `field.KEY_max` (at most) for integer, money
    and date fields, e.g. `?field.vencimento_from=01/11/2025&field.vencimento_to=30/11/2025&field.valor_parcela_min=1000`.
    A list filtered on fields is ordered by the first field filtered (a closed range first), then
    id, and counts up to 1,000 matches (`total_is_lower_bound` says when there are more)."""
    field_filters = fields.parse_filters(session, request.query_params.multi_items())
    items, total = service.list_contacts(session, search=search, offset=offset, limit=limit,
                                         field_filters=field_filters)
    more = total > fields.COUNT_LIMIT
    return ContactPage(items=items, total=min(total, fields.COUNT_LIMIT), total_is_lower_bound=more, offset=offset,
                       limit=limit)


@router.get("/by-phone", response_model=ContactOut)
def find_by_phone(session: DbSession, _: AgentUser, phone: str = Query(..., min_length=1)):
    contact = service.find_by_phone(session, phone)
    if contact is None:
        raise NotFound(f"no contact has the phone {phone!r}")
    return contact


@router.post("", response_model=ContactOut, status_code=status.HTTP_201_CREATED)
def create_contact(body: ContactCreate, session: DbSession, _: AgentUser):
    return service.create_contact(session, body.model_dump())


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
