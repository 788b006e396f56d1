"""The numbers of erased contacts who had opted out, kept as keyed hashes so that the opt-out
outlives the erasure without the number (personal_data.py says why a plain hash would not do).

An erasure of a contact with any opt-out flag (SMS, WhatsApp, marketing) records the HMAC of each
of its match keys (phones, WhatsApp numbers and user ids), keyed with the product's secret key and
pointing at the tombstone, which keeps the flags. Every send looks the number up: a message to a
number whose tombstone opted out of the channel's kind (or of marketing, for a marketing template)
is blocked as the contact's own would be, whoever the number belongs to now (a CSV import, an Odoo
sync or a customer writing again brings it back as a new contact without the flags). Reversing the
tombstone's flag (the contact page of "Contato apagado #N") lifts it.

Changing CONTACT_CENTER_SECRET_KEY makes the stored hashes match nothing: the erased opt-outs are
then forgotten here (Kolmeya's blacklist still refuses the SMS ones)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center.channels.kinds import MARKETING_STOPPED
from contact_center.contacts.models import Contact
from contact_center.db import chunks
from contact_center.privacy.models import ErasedNumber
from contact_center.translations import Words

_keys: dict[tuple[str, str], bytes] = {}  # (configured key, data directory) → the key


def _key() -> bytes:
    from contact_center.runtime import current_settings

    settings = current_settings()
    # Read once (a generated key is a file in the data directory), not at every send.
    known = (settings.secret_key.get_secret_value(), str(settings.data_dir))
    if known not in _keys:
        _keys[known] = settings.effective_secret_key().encode()
    return _keys[known]


def _hash(key: bytes, match_key: str) -> str:
    return hmac.new(key, match_key.encode(), hashlib.sha256).hexdigest()


def _hashes(key: bytes, match_keys: Iterable[str]) -> list[str]:
    return sorted({_hash(key, match_key) for match_key in match_keys if match_key})


def record(session: Session, contact: Contact, match_keys: Iterable[str]) -> int:
    """Keep the hashes of an erased contact's match keys, if it opted out of anything; how many."""
    if not (contact.opt_out_sms or contact.opt_out_whatsapp or contact.opt_out_marketing):
        return 0
    hashes = _hashes(_key(), match_keys)
    for chunk in chunks(hashes):
        # A number erased twice (two contacts that shared it) keeps the first tombstone.
        known = set(session.scalars(select(ErasedNumber.number_hash).where(ErasedNumber.number_hash.in_(chunk))))
        session.add_all(ErasedNumber(number_hash=h, contact_id=contact.id) for h in chunk if h not in known)
    session.flush()
    return len(hashes)


@dataclass(frozen=True)
class Blocked:
    tombstone_id: int  # the erased contact whose flag it is
    reason: Words  # stored with the message, as the contact's own opt-out would be
    opted_out_of_kind: bool  # else only of marketing


@dataclass(frozen=True)
class Tombstone:
    contact_id: int
    opt_out_sms: bool
    opt_out_whatsapp: bool
    opt_out_marketing: bool


@dataclass(frozen=True)
class ErasedOptOuts:
    """Erased numbers and their tombstones' flags, by hash."""

    key: bytes
    tombstones: dict[str, Tombstone]

    @classmethod
    def none(cls) -> ErasedOptOuts:
        return cls(b"", {})

    def blocks(self, match_key: str | None, kind, content: dict | None = None) -> Blocked | None:
        """Whether a message of this channel kind to the number is stopped by its tombstone: the
        kind's opt-out, or (a template whose stored `content` says MARKETING) the marketing one."""
        if not self.tombstones or not match_key:
            return None
        tombstone = self.tombstones.get(_hash(self.key, match_key))
        if tombstone is None:
            return None
        if getattr(tombstone, kind.opt_out_field):
            return Blocked(tombstone.contact_id, kind.opted_out_reason, opted_out_of_kind=True)
        if tombstone.opt_out_marketing and str((content or {}).get("category", "")).upper() == "MARKETING":
            return Blocked(tombstone.contact_id, MARKETING_STOPPED, opted_out_of_kind=False)
        return None


def look_up(session: Session, match_keys: Iterable[str] | None = None) -> ErasedOptOuts:
    """The tombstones of these numbers (None: of every erased number, for a campaign's audience:
    one erased opted-out person a row, a small table)."""
    key = _key()
    query = select(ErasedNumber.number_hash, Contact.id, Contact.opt_out_sms, Contact.opt_out_whatsapp,
                   Contact.opt_out_marketing).join(Contact, Contact.id == ErasedNumber.contact_id)
    if match_keys is None:
        rows = session.execute(query)
    else:
        rows = (row for chunk in chunks(_hashes(key, match_keys))
                for row in session.execute(query.where(ErasedNumber.number_hash.in_(chunk))))
    return ErasedOptOuts(key, {number_hash: Tombstone(contact_id, bool(sms), bool(whatsapp), bool(marketing))
                               for number_hash, contact_id, sms, whatsapp, marketing in rows})
