"""Contacts and their phone identity: every inbound message must reach the right contact."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy.orm import Session

from contact_center import phones
from contact_center.audit.service import record
from contact_center.contacts import blacklist, fields, tags
from contact_center.contacts.duplicates import document_taken
from contact_center.contacts.documents import DocumentError, normalize_cpf
from contact_center.contacts.models import Contact
from contact_center.db import ContainsText, DriverCursor, chunks, utcnow
from contact_center.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

PHONE_FIELDS = ("phone", "mobile")
PLAIN_FIELDS = ("name", "email", "notes", "opt_out_sms", "opt_out_whatsapp")
MAX_PAGE = 200


def _set_phone(contact: Contact, field: str, raw: str | None) -> None:
    raw = (raw or "").strip() or None
    if raw is None:
        identity = None
    else:
        try:
            identity = phones.identify(raw)
        except phones.PhoneNumberError as exc:
            raise InvalidInput(exc, field=field) from None
    setattr(contact, field, raw)
    setattr(contact, f"{field}_e164", identity.e164 if identity else None)
    setattr(contact, f"{field}_key", identity.key if identity else None)


def _clean_document(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return normalize_cpf(raw)
    except DocumentError as exc:
        raise InvalidInput(exc, field="document") from None


def _check_document_free(session: Session, document: str | None, contact_id: int | None) -> None:
    if document is None:
        return
    owner = session.scalar(select(Contact.id).where(Contact.document == document))
    if owner is not None and owner != contact_id:
        raise document_taken(session, document, owner)


def apply_changes(session: Session, contact: Contact, changes: Mapping[str, Any]) -> Contact:
    """Validate every change first, then apply them all: a bad field leaves the contact untouched."""
    staged = Contact()
    for field in PHONE_FIELDS:
        if field in changes:
            _set_phone(staged, field, changes[field])
    document = _clean_document(changes.get("document")) if "document" in changes else contact.document
    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name:
            raise InvalidInput("name must not be empty", field="name")
        changes = {**changes, "name": name}
    for flag in ("opt_out_sms", "opt_out_whatsapp"):
        if flag in changes and not isinstance(changes[flag], bool):
            raise InvalidInput("{flag} must be true or false", flag=flag, field=flag)
    _check_document_free(session, document, contact.id)

    for field in PHONE_FIELDS:
        if field in changes:
            for suffix in ("", "_e164", "_key"):
                setattr(contact, field + suffix, getattr(staged, field + suffix))
    contact.document = document
    for field in PLAIN_FIELDS:
        if field in changes:
            value = changes[field]
            if isinstance(value, str) and field != "name":
                value = value.strip() or None
            setattr(contact, field, value)
    return contact


def _check_field_values(session: Session, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contact's own changes and its custom field values apart, the values checked first."""
    data = dict(data)
    values = data.pop("fields", None) or {}
    if values:
        fields.check_values({d.key: d for d in fields.definitions(session)}, values)
    return data, values


def create_contact(session: Session, data: Mapping[str, Any]) -> Contact:
    names = tags.clean(data["tags"]) if data.get("tags") is not None else []
    data, values = _check_field_values(session, data)
    contact = apply_changes(session, Contact(opt_out_sms=False, opt_out_whatsapp=False), data)
    session.add(contact)
    session.flush()
    fields.set_values(session, contact, values)
    tags.add(session, [(contact.id, name) for name in names])
    record(session, action="contact.create", subject_type="contact", subject_id=contact.id)
    if contact.opt_out_sms:
        blacklist.push_after_commit(session, [contact.id])
    return contact


def update_contact(session: Session, contact: Contact, changes: Mapping[str, Any]) -> Contact:
    """Change a contact. An SMS opt-out set or cleared here (an operator, the API, the CLI) reaches
    the providers' blacklists once committed."""
    was_opted_out = bool(contact.opt_out_sms)
    names = tags.clean(changes["tags"] or []) if "tags" in changes else None  # null clears them
    changes, values = _check_field_values(session, changes)
    before = {field: getattr(contact, field, None) for field in changes if field != "tags"}
    apply_changes(session, contact, changes)
    session.flush()
    fields.set_values(session, contact, values)
    if names is not None:
        tags.replace(session, contact.id, names)
    _record_changes(session, contact, before)
    if bool(contact.opt_out_sms) != was_opted_out:
        blacklist.push_after_commit(session, [contact.id])
    return contact


def _record_changes(session: Session, contact: Contact, before: Mapping[str, Any]) -> None:
    """One entry naming the fields that changed (not their values: the audit log keeps no more
    personal data than it must), and one per opt-out flag set or cleared."""
    changed = [field for field, value in before.items() if getattr(contact, field, None) != value]
    flags = [field for field in changed if field in OPT_OUT_FLAGS]
    if fields := [field for field in changed if field not in flags]:
        record(session, action="contact.update", subject_type="contact", subject_id=contact.id, fields=fields)
    for flag in flags:
        value = getattr(contact, flag)
        record(session, action=f"contact.{flag}" if value else f"contact.{flag}.cleared", subject_type="contact",
               subject_id=contact.id)


def erase_personal_data(session: Session, contact: Contact) -> None:
    """An LGPD erasure of the contact's own row: a placeholder name, no phones, email, CPF or notes.
    The row stays (messages and reports still point at it), and so do its opt-out flags and its Odoo
    partner id, now a tombstone (erased_at) the partner sync skips instead of filling it again."""
    contact.name = f"Contato apagado #{contact.id}"
    contact.erased_at = utcnow()
    for field in ("phone", "phone_e164", "phone_key", "mobile", "mobile_e164", "mobile_key", "email", "document",
                  "notes"):
        setattr(contact, field, None)
    session.flush()


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("no contact with id {contact_id}", contact_id=contact_id)
    return contact


def delete_contact(session: Session, contact_id: int) -> None:
    session.delete(get_contact(session, contact_id))
    session.flush()
    record(session, action="contact.delete", subject_type="contact", subject_id=contact_id)


def list_contacts(
    session: Session, *, search: str | None = None, tags_: list[str] | None = None, offset: int = 0, limit: int = 50,
    newest_first: bool = False, before_id: int | None = None, after_id: int | None = None,
    count_cap: int | None = None, field_filters: list[fields.FieldFilter] | None = None,
) -> tuple[list[Contact], int]:
    """A page of contacts, by id. `search` matches a name or email fragment, a CPF, or any written
    phone; `tags_` keeps the contacts that have every one of these tags.

    For a million contacts (the contacts page): `newest_first` with `before_id` (the next page: older
    than that id) or `after_id` (the page before: newer than it) pages by the primary key instead of
    OFFSET, and `count_cap` stops counting there (the total is then at most the cap), so no page
    reads a million rows.

    `field_filters` (fields.parse_filters) narrow it on the business's fields and order it by the
    first field filtered; then the total counts at most fields.COUNT_LIMIT + 1 contacts (more than
    the limit).
    """
    if limit < 1 or limit > MAX_PAGE:
        raise InvalidInput("limit must be between 1 and {MAX_PAGE}", MAX_PAGE=MAX_PAGE, field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    query = select(Contact)
    searching = bool(search and search.strip())
    if searching:
        query = query.where(search_filter(search.strip()))
    if tags_:
        query = query.where(tags.having_all(tags_))
    if field_filters:
        # Without a search or tags, the values alone say who matches: counting reads no contact row.
        counted = (fields.filtered(query, field_filters) if searching or tags_
                   else fields.filtered(None, field_filters, contact_id=None))
        counted = counted.order_by(None).limit(fields.COUNT_LIMIT + 1)
        page = fields.filtered(query, field_filters).options(fields.WITH_FIELDS)
        items = list(session.scalars(page.offset(offset).limit(limit)))
        return items, session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    page = query.options(fields.WITH_FIELDS)
    if not newest_first:
        items = list(session.scalars(page.order_by(Contact.id).offset(offset).limit(limit)))
    elif after_id is not None:  # read upwards from after_id, shown newest first like every page
        items = list(session.scalars(page.where(Contact.id > after_id).order_by(Contact.id).limit(limit)))[::-1]
    else:
        older = page.where(Contact.id < before_id) if before_id is not None else page
        items = list(session.scalars(older.order_by(Contact.id.desc()).offset(offset).limit(limit)))
    if offset == 0 and before_id is None and after_id is None and len(items) < limit:
        return items, len(items)  # the first page holds them all: no second pass to count them
    counted = query.with_only_columns(Contact.id)
    if count_cap is not None:
        counted = counted.limit(count_cap)
    return items, session.scalar(select(func.count()).select_from(counted.subquery())) or 0


def search_filter(text: str):
    """Contacts matching `text`: any written form of a phone, or a CPF, by their indexes; otherwise
    a name or email fragment (the contact list, bulk sends and exports all search this way). A text
    that is a phone or a CPF is not also looked for inside names: that scan is what makes a search
    slow on a million contacts, and no name is a phone number."""
    conditions = []
    try:
        key = phones.match_key(text)
        conditions += [Contact.phone_key == key, Contact.mobile_key == key]
    except phones.PhoneNumberError:
        pass
    try:
        conditions.append(Contact.document == normalize_cpf(text))
    except DocumentError:
        pass
    if not conditions:
        conditions = [ContainsText(Contact.name, text), ContainsText(Contact.email, text)]
    return or_(*conditions)


def find_by_phone(session: Session, raw: str) -> Contact | None:
    """The contact a phone number belongs to, whatever way it was written.

    Exact E.164 first, then the ninth-digit variant of the same mobile (both share a match key);
    a landline never matches a mobile. When several contacts tie, the oldest wins, with a warning
    so someone can merge them.
    """
    try:
        identity = phones.identify(raw)
    except phones.PhoneNumberError as exc:
        raise InvalidInput(exc, field="phone") from None
    chosen = pick_contact(identity, session.connection().execute(_MATCH, {"key": identity.key}).all())
    return session.get(Contact, chosen.id) if chosen else None


# Only the columns pick_contact compares, prebuilt once (the bulk paths use pick_contact on their own reads).
_contacts = Contact.__table__
_MATCH = (select(_contacts.c.id, _contacts.c.phone_e164, _contacts.c.mobile_e164)
          .where(or_(_contacts.c.phone_key == bindparam("key"), _contacts.c.mobile_key == bindparam("key")))
          .order_by(_contacts.c.id))


def pick_contact(identity: phones.PhoneIdentity, candidates: list):
    """Among rows sharing the number's match key (ordered by id): exact E.164 first, the oldest on ties."""
    if not candidates:
        return None
    exact = [c for c in candidates if identity.e164 in (c.phone_e164, c.mobile_e164)]
    tier = exact or candidates
    if len(tier) > 1:
        log.warning(
            "phone %s matches %d contacts (%s); using contact %d, the oldest",
            identity.e164, len(tier), ", ".join(str(c.id) for c in tier), tier[0].id,
        )
    return tier[0]


class Candidate(NamedTuple):
    id: int
    phone_e164: str | None
    mobile_e164: str | None
    phone_key: str | None
    mobile_key: str | None
    opt_out_sms: bool
    opt_out_whatsapp: bool


def candidates_by_key(connection: Connection, keys: list[str]) -> dict[str, list[Candidate]]:
    """For many match keys at once: the contact rows holding each key (ordered by id), ready for
    pick_contact. Webhook batches run this many times a second, so it goes straight to the driver."""
    driver = DriverCursor(connection)
    candidates: dict[str, list[Candidate]] = defaultdict(list)
    for chunk in chunks(keys):
        marks = driver.marks(len(chunk))
        for row in driver.rows("SELECT id, phone_e164, mobile_e164, phone_key, mobile_key, opt_out_sms, "
                               f"opt_out_whatsapp FROM contacts WHERE phone_key IN ({marks}) OR mobile_key IN ({marks}) "
                               "ORDER BY id", chunk + chunk):
            candidate = Candidate(*row[:5], bool(row[5]), bool(row[6]))
            for key in {candidate.phone_key, candidate.mobile_key} - {None}:
                candidates[key].append(candidate)
    return candidates


OPT_OUT_FLAGS = ("opt_out_sms", "opt_out_whatsapp", "opt_out_marketing")


def opt_out(session: Session, contact_id: int, flag: str, *, via: str, reason: str | None = None,
            value: bool = True, actor_id: int | None = None) -> None:
    """Set (or, with value=False, clear) one of the contact's opt-out flags, audited: a customer
    who stopped marketing on WhatsApp, one whose send failed for it. An SMS one reaches the
    providers' blacklists once committed."""
    from sqlalchemy import update

    from contact_center.db import utcnow

    assert flag in OPT_OUT_FLAGS, flag
    session.execute(update(Contact).where(Contact.id == contact_id).values({flag: value, "updated_at": utcnow()}))
    record(session, action=f"contact.{flag}" if value else f"contact.{flag}.cleared", subject_type="contact",
           subject_id=contact_id, actor_id=actor_id, via=via, reason=reason)
    if flag == "opt_out_sms":
        blacklist.push_after_commit(session, [contact_id])
    log.info("contact %d: %s %s (%s)", contact_id, flag, "set" if value else "cleared", reason or via)
