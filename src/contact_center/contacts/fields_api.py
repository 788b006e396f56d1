"""/api/contact-fields: the fields a business defines for its contacts (agents read, admins change)."""

from __future__ import annotations

from fastapi import APIRouter, Query, status

from contact_center.contacts import fields
from contact_center.contacts.schemas import ContactFieldCreate, ContactFieldOut, ContactFieldRemoved, ContactFieldUpdate
from contact_center.deps import AdminUser, AgentUser, DbSession
from contact_center.routes import CheckedRoute

router = APIRouter(prefix="/api/contact-fields", tags=["contact fields"], route_class=CheckedRoute)


@router.get("", response_model=list[ContactFieldOut])
def list_fields(session: DbSession, _: AgentUser):
    return [ContactFieldOut(**d.as_dict(), values=fields.count_values(session, d.id))
            for d in fields.definitions(session)]


@router.post("", response_model=ContactFieldOut, status_code=status.HTTP_201_CREATED)
def create_field(body: ContactFieldCreate, session: DbSession, user: AdminUser):
    created = fields.add_field(session, key=body.key, label=body.label, type=body.type, choices=body.choices,
                               position=body.position, actor_id=user.id)
    return ContactFieldOut(**created.as_dict(), values=0)


@router.patch("/{key}", response_model=ContactFieldOut)
def update_field(key: str, body: ContactFieldUpdate, session: DbSession, user: AdminUser):
    changed = fields.update_field(session, key, label=body.label, choices=body.choices, position=body.position,
                                  actor_id=user.id)
    return ContactFieldOut(**changed.as_dict(), values=fields.count_values(session, changed.id))


@router.delete("/{key}", response_model=ContactFieldRemoved)
def remove_field(key: str, session: DbSession, user: AdminUser,
                 confirm: bool = Query(False, description="Needed when contacts hold a value of the field.")):
    return ContactFieldRemoved(key=key, values_removed=fields.remove_field(session, key, confirm=confirm,
                                                                           actor_id=user.id))
