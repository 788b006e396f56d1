"""The one writer of contact_identifiers: the ids a channel knows a customer by besides a phone
(WhatsApp's wa_id, its business-scoped user id, the username). A contact is found by any of them;
an id already held by a contact stays with it (never moved by a message that names it)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import delete
from sqlalchemy.orm import Session

from contact_center.contacts.models import ContactIdentifier
from contact_center.db import DriverCursor, chunks

log = logging.getLogger(__name__)

KINDS = ("wa_id", "wa_user_id", "wa_username")


def user_key(user_id: str) -> str:
    """The conversation key of a WhatsApp user known only by id (no phone shared)."""
    return f"wa:{user_id}"


def user_id_of(key: str) -> str | None:
    """The WhatsApp user id of a conversation key made by `user_key`; None for a phone's key."""
    return key[3:] if key.startswith("wa:") else None


def contacts_by_identifier(driver: DriverCursor, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(kind, value) → (contact id, opt_out_sms, opt_out_whatsapp, the contact's wa_id or None) for the
    pairs some contact holds."""
    wanted = list(set(pairs))
    found: dict[tuple[str, str], tuple] = {}
    for chunk in chunks(wanted):
        condition = " OR ".join(["(i.kind = ? AND i.value = ?)"] * len(chunk))
        values = [item for pair in chunk for item in pair]
        for kind, value, contact_id, sms, whatsapp in driver.rows(
                "SELECT i.kind, i.value, c.id, c.opt_out_sms, c.opt_out_whatsapp FROM contact_identifiers i "
                f"JOIN contacts c ON c.id = i.contact_id WHERE {condition}", values):
            found[(kind, value)] = (contact_id, bool(sms), bool(whatsapp), None)
    contact_ids = list({row[0] for row in found.values()})
    wa_ids: dict[int, str] = {}
    for chunk in chunks(contact_ids):
        wa_ids.update((contact_id, value) for contact_id, value in driver.rows(
            f"SELECT contact_id, value FROM contact_identifiers WHERE kind = 'wa_id' AND contact_id IN "
            f"({driver.marks(len(chunk))})", chunk))
    return {pair: (*row[:3], wa_ids.get(row[0])) for pair, row in found.items()}


def attach(driver: DriverCursor, contact_id: int, identifiers: dict[str, str], stamp) -> None:
    """Give the contact these ids, those no contact holds yet."""
    pairs = [(kind, value) for kind, value in identifiers.items() if kind in KINDS and value]
    if not pairs:
        return
    held = contacts_by_identifier(driver, pairs)
    for pair in pairs:
        if pair in held and held[pair][0] != contact_id:
            log.warning("contact %d: %s %s already belongs to contact %d; left there", contact_id, pair[0],
                        pair[1], held[pair][0])
    missing = [(contact_id, kind, value, stamp) for kind, value in pairs if (kind, value) not in held]
    if missing:
        driver.executemany("INSERT INTO contact_identifiers (contact_id, kind, value, created_at) VALUES (?, ?, ?, ?)",
                           missing)


def forget(session: Session, contact_id: int) -> int:
    """Remove the contact's identifiers (an LGPD erasure); returns how many there were."""
    return session.execute(delete(ContactIdentifier).where(ContactIdentifier.contact_id == contact_id)).rowcount
