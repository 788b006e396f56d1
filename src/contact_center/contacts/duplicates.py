"""Duplicate contacts: the warning when one is about to be created, and the report of the groups
that already exist.

A CPF is unique: a second contact with it is always refused, naming the first. A phone another
contact has (the same match key, so any written form and the ninth digit) is refused too unless
the caller says to create anyway: two people may share a landline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.contacts.documents import format_cpf
from contact_center.contacts.models import Contact
from contact_center.db import DriverCursor, chunks
from contact_center.errors import Conflict, InvalidInput


class DuplicateContact(Conflict):
    """Another contact already has this CPF or phone: 409 with its id."""

    code = "duplicate_contact"

    def __init__(self, message: str, *, field: str, contact_id: int, **params):
        super().__init__(message, field=field, **params)
        self.contact_id = contact_id

    def as_dict(self, lang: str | None = None) -> dict:
        return {**super().as_dict(lang), "contact_id": self.contact_id}


def document_taken(session: Session, document: str, owner_id: int) -> DuplicateContact:
    name = session.scalar(select(Contact.name).where(Contact.id == owner_id))
    return DuplicateContact("O CPF {cpf} já pertence ao contato {owner_id} ({name}); não pode haver dois contatos "
                            "com o mesmo CPF.", field="document", contact_id=owner_id, cpf=format_cpf(document),
                            owner_id=owner_id, name=name)


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
                "O telefone {raw} já é do contato {owner_id} ({owner_name}). Se for outra pessoa com o mesmo número, confirme a criação (create_anyway); se for a mesma, atualize ou unifique aquele contato.", raw=raw, owner_id=owner.id, owner_name=owner.name,
                field=field, contact_id=owner.id)


# --- the report of existing duplicates -------------------------------------------------------------

REASONS = ("phone", "email", "wa_id")  # in the report's order
MAX_PAGE = 200
_READ_CHUNK = 2000  # WhatsApp ids read at a time
_GROUP_CHUNK = 200  # groups looked up at a time (well under the drivers' parameter limits)
_contacts = Contact.__table__


@dataclass
class DuplicateGroup:
    reason: str  # phone: the same match key in any phone field; email; wa_id: WhatsApp's id of another's number
    value: str  # the shared key, address or WhatsApp id
    contacts: list[tuple[int, str]]  # (id, name), oldest first


def report(session: Session, *, after: str | None = None, limit: int = 50) -> tuple[list[DuplicateGroup], str | None]:
    """A page of groups of likely duplicates, and the cursor of the next page (None at the end).

    The phone and email columns are grouped along their indexes from the cursor, by the database,
    so a page costs the index entries up to its last group, not a scan of the table; WhatsApp ids
    are read by identifier id.
    `after` is the `next_after` of the page before ("phone:+5511900000001", "email:…", "wa_id:…").
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit deve estar entre 1 e {MAX_PAGE}", MAX_PAGE=MAX_PAGE, field="limit")
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


def _repeated(driver: DriverCursor, column: str, after: str, upto: str | None = None) -> list[str]:
    """The next values held by more than one contact in `column` (up to `upto`), in index order:
    the database groups along the index and stops at the LIMIT or the bound."""
    bound, params = ("", [after]) if upto is None else (f" AND {column} <= ?", [after, upto])
    return [value for (value,) in driver.rows(
        f"SELECT {column} FROM contacts WHERE {column} > ?{bound} GROUP BY {column} HAVING count(*) > 1 "
        f"ORDER BY {column} LIMIT {_GROUP_CHUNK}", params)]


def _phone_groups(session: Session, after: str | None):
    """Contacts sharing a match key: twice in one phone column, or one's phone another's mobile.
    Each of the three lists holds its next keys in order, so the first keys of their union are
    the next keys of the report; the mobile column, the longest, is read only as far as a full
    list of the other two reaches."""
    driver = DriverCursor(session.connection())
    last = after or ""
    while True:
        crossed = [key for (key,) in driver.rows(
            "SELECT DISTINCT p.phone_key FROM contacts p JOIN contacts m ON m.mobile_key = p.phone_key AND m.id <> p.id "
            f"WHERE p.phone_key > ? ORDER BY p.phone_key LIMIT {_GROUP_CHUNK}", [last])]
        in_phones = _repeated(driver, "phone_key", last)
        full = [found[-1] for found in (crossed, in_phones) if len(found) == _GROUP_CHUNK]
        in_mobiles = _repeated(driver, "mobile_key", last, upto=min(full) if full else None)
        keys = sorted({*in_mobiles, *in_phones, *crossed})
        keys = keys[:_GROUP_CHUNK]
        if not keys:
            return
        holders: dict[str, set[int]] = {key: set() for key in keys}
        marks = driver.marks(len(keys))
        for contact_id, phone_key, mobile_key in driver.rows(
                f"SELECT id, phone_key, mobile_key FROM contacts WHERE phone_key IN ({marks}) OR mobile_key IN ({marks})",
                keys + keys):
            for key in {phone_key, mobile_key} & holders.keys():
                holders[key].add(contact_id)
        for key in keys:
            yield key, key, holders[key]
        last = keys[-1]


def _email_groups(session: Session, after: str | None):
    driver = DriverCursor(session.connection())
    last = after or ""
    while addresses := _repeated(driver, "email", last):
        holders: dict[str, set[int]] = {address: set() for address in addresses}
        for contact_id, email in driver.rows(
                f"SELECT id, email FROM contacts WHERE email IN ({driver.marks(len(addresses))})", addresses):
            holders[email].add(contact_id)
        for address in addresses:
            yield address, address, holders[address]
        last = addresses[-1]


def _wa_id_groups(session: Session, after: str | None):
    """A contact WhatsApp knows by a number (its wa_id) that another contact has, though the first
    has not got it as a phone (when it has, the phone groups show them already)."""
    driver = DriverCursor(session.connection())
    last = int(after or 0)
    while True:
        rows = driver.rows("SELECT id, contact_id, value FROM contact_identifiers WHERE kind = 'wa_id' AND id > ? "
                           f"ORDER BY id LIMIT {_READ_CHUNK}", [last])
        if not rows:
            return
        keys = {}
        for identifier_id, _, value in rows:
            try:
                keys[identifier_id] = phones.match_key("+" + value)
            except phones.PhoneNumberError:
                pass
        holders: dict[str, set[int]] = {}
        wanted = sorted(set(keys.values()))
        for column in ("phone_key", "mobile_key"):  # one IN list per index: an OR of both may scan the table
            for chunk in chunks(wanted):
                for contact_id, key in driver.rows(
                        f"SELECT id, {column} FROM contacts WHERE {column} IN ({driver.marks(len(chunk))})", chunk):
                    holders.setdefault(key, set()).add(contact_id)
        for identifier_id, contact_id, value in rows:
            held = holders.get(keys.get(identifier_id), set())
            if held and contact_id not in held:
                yield str(identifier_id), value, held | {contact_id}
        last = rows[-1][0]


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for chunk in chunks(sorted(ids)):
        names.update(session.execute(select(_contacts.c.id, _contacts.c.name).where(_contacts.c.id.in_(chunk))).all())
    return names
