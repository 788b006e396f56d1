"""Duplicate contacts: the warning when one is about to be created, and the report of the groups
that already exist.

A CPF is unique: a second contact with it is always refused, naming the first. A phone another
contact has (the same match key, so any written form and the ninth digit) is refused too unless
the caller says to create anyway: two people may share a landline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.contacts.documents import format_cpf
from contact_center.contacts.models import Contact
from contact_center.errors import Conflict


class DuplicateContact(Conflict):
    """Another contact already has this CPF or phone: 409 with its id."""

    code = "duplicate_contact"

    def __init__(self, message: str, *, field: str, contact_id: int):
        super().__init__(message, field=field)
        self.contact_id = contact_id

    def as_dict(self) -> dict:
        return {**super().as_dict(), "contact_id": self.contact_id}


def document_taken(session: Session, document: str, owner_id: int) -> DuplicateContact:
    name = session.scalar(select(Contact.name).where(Contact.id == owner_id))
    return DuplicateContact(f"O CPF {format_cpf(document)} já pertence ao contato {owner_id} ({name}); não pode "
                            "haver dois contatos com o mesmo CPF.", field="document", contact_id=owner_id)


def refuse_phone_duplicates(session: Session, data: Mapping[str, Any]) -> None:
    """DuplicateContact when a phone of `data` (phone, mobile, as the API takes them) is already a
    contact's. Numbers that are not numbers are left for the contact's own checks to name."""
    for field in ("mobile", "phone"):
        raw = (data.get(field) or "").strip() if isinstance(data.get(field), str) else ""
        if not raw:
            continue
        try:
            key = phones.match_key(raw)
        except phones.PhoneNumberError:
            continue
        owner = session.execute(select(Contact.id, Contact.name)
                                .where(or_(Contact.phone_key == key, Contact.mobile_key == key))
                                .order_by(Contact.id).limit(1)).first()
        if owner is not None:
            raise DuplicateContact(
                f"O telefone {raw} já é do contato {owner.id} ({owner.name}). Se for outra pessoa com o mesmo número, "
                "confirme a criação (create_anyway); se for a mesma, atualize ou unifique aquele contato.",
                field=field, contact_id=owner.id)
