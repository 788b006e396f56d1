"""Duplicate contacts: the warning when one is about to be created, and the report of the groups
that already exist.

A CPF is unique: a second contact with it is always refused, naming the first. A phone another
contact has (the same match key, so any written form and the ninth digit) is refused too unless
the caller says to create anyway: two people may share a landline.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.contacts.documents import format_cpf
from contact_center.contacts.models import Contact, ContactIdentifier
from contact_center.db import DriverCursor, chunks
from contact_center.errors import Conflict, InvalidInput


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


# --- the report of existing duplicates -------------------------------------------------------------

REASONS = ("phone", "email", "wa_id")  # in the report's order
MAX_PAGE = 200
_READ_CHUNK = 2000
_contacts = Contact.__table__
_identifiers = ContactIdentifier.__table__


@dataclass
class DuplicateGroup:
    reason: str  # phone: the same match key in any phone field; email; wa_id: WhatsApp's id of another's number
    value: str  # the shared key, address or WhatsApp id
    contacts: list[tuple[int, str]]  # (id, name), oldest first


def report(session: Session, *, after: str | None = None, limit: int = 50) -> tuple[list[DuplicateGroup], str | None]:
    """A page of groups of likely duplicates, and the cursor of the next page (None at the end).

    The phone and email columns are walked in index order from the cursor, so a page costs the
    index entries up to its last group, not a scan of the table; WhatsApp ids by identifier id.
    `after` is the `next_after` of the page before ("phone:+5511900000001", "email:…", "wa_id:…").
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit deve estar entre 1 e {MAX_PAGE}", field="limit")
    reason, _, position = (after or "").partition(":")
    if after and (reason not in REASONS or not position or (reason == "wa_id" and not position.isdigit())):
        raise InvalidInput("after: use o next_after da página anterior (por exemplo \"phone:+5511900000001\")",
                           field="after")
    walks = {"phone": _phone_groups, "email": _email_groups, "wa_id": _wa_id_groups}
    found: list[tuple[str, str, str, set[int]]] = []  # (reason, cursor position, value, contact ids)
    for kind in REASONS[REASONS.index(reason) if after else 0:]:
        for cursor, value, ids in walks[kind](session, position if kind == reason else None):
            found.append((kind, cursor, value, ids))
            if len(found) == limit:
                break
        if len(found) == limit:
            break
    names = _names(session, {contact_id for *_, ids in found for contact_id in ids})
    groups = [DuplicateGroup(kind, value, [(i, names[i]) for i in sorted(ids) if i in names])
              for kind, _, value, ids in found]
    next_after = f"{found[-1][0]}:{found[-1][1]}" if len(found) == limit else None
    return groups, next_after


def _column(session: Session, column: str, after: str | None) -> Iterator[tuple[str, int]]:
    """(value, contact id) of every contact with `column` set, in value order, from after `after`:
    read a chunk at a time along the column's index, each chunk ending with a whole value. Plain
    driver rows: a report's last phone page may read a million of them."""
    driver = DriverCursor(session.connection())
    last = after or ""
    while True:
        rows = driver.rows(f"SELECT {column}, id FROM contacts WHERE {column} > ? ORDER BY {column} "
                           f"LIMIT {_READ_CHUNK}", [last])
        if not rows:
            return
        if len(rows) == _READ_CHUNK:  # the last value may go on past the chunk: read all of it
            last = rows[-1][0]
            rows = [row for row in rows if row[0] != last]
            rows += driver.rows(f"SELECT {column}, id FROM contacts WHERE {column} = ?", [last])
        yield from rows
        last = rows[-1][0]


def _grouped(pairs: Iterable[tuple[str, int]]) -> Iterator[tuple[str, str, set[int]]]:
    """The values held by more than one contact (one contact with the same number in both fields
    is not a duplicate), with their contacts."""
    value, first, more = None, None, None
    for next_value, contact_id in pairs:
        if next_value != value:
            if more:
                yield value, value, {first, *more}
            value, first, more = next_value, contact_id, None
        elif contact_id != first:
            more = more or set()
            more.add(contact_id)
    if more:
        yield value, value, {first, *more}


def _phone_groups(session: Session, after: str | None):
    """Contacts sharing a match key, in any of the phone fields: both columns' indexes, merged."""
    yield from _grouped(heapq.merge(_column(session, "phone_key", after), _column(session, "mobile_key", after)))


def _email_groups(session: Session, after: str | None):
    yield from _grouped(_column(session, "email", after))


def _wa_id_groups(session: Session, after: str | None):
    """A contact WhatsApp knows by a number (its wa_id) that another contact has, though the first
    has not got it as a phone (when it has, the phone groups show them already)."""
    from contact_center.contacts.service import candidates_by_key  # service uses this module

    last = int(after or 0)
    while True:
        rows = session.execute(select(_identifiers.c.id, _identifiers.c.contact_id, _identifiers.c.value)
                               .where(_identifiers.c.kind == "wa_id", _identifiers.c.id > last)
                               .order_by(_identifiers.c.id).limit(_READ_CHUNK)).all()
        if not rows:
            return
        keys = {}
        for row in rows:
            try:
                keys[row.id] = phones.match_key("+" + row.value)
            except phones.PhoneNumberError:
                pass
        holders = candidates_by_key(session.connection(), sorted(set(keys.values())))
        for row in rows:
            held = holders.get(keys.get(row.id), [])
            ids = {candidate.id for candidate in held}
            if held and row.contact_id not in ids:
                yield str(row.id), row.value, ids | {row.contact_id}
        last = rows[-1].id


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for chunk in chunks(sorted(ids)):
        names.update(session.execute(select(_contacts.c.id, _contacts.c.name).where(_contacts.c.id.in_(chunk))).all())
    return names
