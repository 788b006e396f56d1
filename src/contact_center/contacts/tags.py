"""The one writer of contact_tags: free-text tags on contacts ("inadimplente", "Acordo 2026").

A tag is matched by its key (lower case, no accents, single spaces: "Inadimplência" and
"inadimplencia " are one tag) and shown as it was first written anywhere: tagging a second
contact "INADIMPLÊNCIA" shows "Inadimplência" on both. A merge hands the merged contact's tags to
the survivor (contacts/merge.py re-points their rows).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from contact_center.contacts.models import Contact, ContactTag
from contact_center.db import chunks, utcnow
from contact_center.errors import InvalidInput

MAX_LENGTH = 50
MAX_PER_CONTACT = 50
SEPARATORS = re.compile(r"[;,]")  # between tags in a CSV cell
_SPACES = re.compile(r"\s+")
_tags = ContactTag.__table__


def tag_key(name: str) -> str:
    """What two spellings of one tag share: 'Inadimplência ' → 'inadimplencia'."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", plain).strip().casefold()


def clean(names: Iterable, field: str = "tags") -> list[str]:
    """The tags as they will be stored (trimmed, one per key, in the order given); InvalidInput,
    in Portuguese, naming the first bad one."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise InvalidInput("as etiquetas devem ser uma lista de textos, por exemplo [\"VIP\", \"inadimplente\"]",
                           field=field)
    kept: dict[str, str] = {}
    for position, name in enumerate(names, 1):
        if not isinstance(name, str):
            raise InvalidInput("etiqueta {position}: deve ser um texto", position=position, field=field)
        shown = _SPACES.sub(" ", name).strip()
        if not shown:
            raise InvalidInput("etiqueta {position}: está vazia", position=position, field=field)
        if len(shown) > MAX_LENGTH:
            raise InvalidInput("etiqueta {position}: tem {length} caracteres; o máximo é {most}", field=field,
                               position=position, length=len(shown), most=MAX_LENGTH)
        if SEPARATORS.search(shown):
            raise InvalidInput("etiqueta {position} ('{shown}'): não pode ter vírgula nem ponto e vírgula, que "
                               "separam etiquetas", position=position, shown=shown, field=field)
        if any(unicodedata.category(ch).startswith("C") for ch in shown):
            raise InvalidInput("etiqueta {position}: tem um caractere de controle", position=position, field=field)
        kept.setdefault(tag_key(shown), shown)
    if len(kept) > MAX_PER_CONTACT:
        raise InvalidInput("são {count} etiquetas; um contato tem no máximo {most}", field=field, count=len(kept),
                           most=MAX_PER_CONTACT)
    return list(kept.values())


def split_cell(cell: str, field: str = "tags") -> list[str]:
    """A CSV cell's tags: 'VIP; inadimplente, acordo' → ['VIP', 'inadimplente', 'acordo']."""
    return clean([part for part in SEPARATORS.split(cell) if part.strip()], field=field)


def spellings(session: Session, keys: Iterable[str]) -> dict[str, str]:
    """How each of these tag keys was first written, for the keys some contact has."""
    found: dict[str, str] = {}
    for chunk in chunks(sorted(set(keys))):
        first = (select(_tags.c.key, func.min(_tags.c.id).label("id")).where(_tags.c.key.in_(chunk))
                 .group_by(_tags.c.key).subquery())
        found.update(session.execute(select(_tags.c.key, _tags.c.name).join(first, first.c.id == _tags.c.id)).all())
    return found


def add(session: Session, pairs: Iterable[tuple[int, str]]) -> int:
    """Give each contact its tag (names already `clean`): (contact id, name) pairs, any number, a
    tag it has already is left as it is. Returns how many were added."""
    wanted: dict[tuple[int, str], str] = {}
    first_given: dict[str, str] = {}  # a tag new to everyone: as its first mention here writes it
    for contact_id, name in pairs:
        key = tag_key(name)
        wanted.setdefault((contact_id, key), name)
        first_given.setdefault(key, name)
    if not wanted:
        return 0
    held = set()
    for chunk in chunks(sorted({contact_id for contact_id, _ in wanted})):
        held.update(session.execute(select(_tags.c.contact_id, _tags.c.key).where(_tags.c.contact_id.in_(chunk))))
    missing = [(contact_id, key) for contact_id, key in wanted if (contact_id, key) not in held]
    if not missing:
        return 0
    shown = spellings(session, {key for _, key in missing})
    now = utcnow()
    session.execute(insert(_tags), [{"contact_id": contact_id, "key": key, "name": shown.get(key, first_given[key]),
                                     "created_at": now} for contact_id, key in missing])
    _forget_loaded(session, {contact_id for contact_id, _ in missing})
    return len(missing)


def remove(session: Session, contact_id: int, names: Iterable[str]) -> int:
    """Take these tags off the contact (any spelling); returns how many it had."""
    keys = {tag_key(name) for name in names}
    if not keys:
        return 0
    result = session.execute(delete(_tags).where(_tags.c.contact_id == contact_id, _tags.c.key.in_(keys)))
    _forget_loaded(session, {contact_id})
    return result.rowcount


def replace(session: Session, contact_id: int, names: list[str]) -> None:
    """The contact's tags become exactly these (names already `clean`)."""
    keep = {tag_key(name) for name in names}
    current = set(session.scalars(select(_tags.c.key).where(_tags.c.contact_id == contact_id)))
    if current - keep:
        session.execute(delete(_tags).where(_tags.c.contact_id == contact_id, _tags.c.key.in_(current - keep)))
    _forget_loaded(session, {contact_id})
    add(session, [(contact_id, name) for name in names])


def having_all(names: Iterable[str]):
    """The condition "the contact has every one of these tags" (any spelling), for a contact query."""
    return and_(*(Contact.id.in_(select(_tags.c.contact_id).where(_tags.c.key == tag_key(name))) for name in names))


def counts(session: Session) -> list[tuple[str, int]]:
    """Every tag in use, as first written, and how many contacts have it; most used first."""
    first = select(_tags.c.key, func.min(_tags.c.id).label("id"), func.count().label("contacts")) \
        .group_by(_tags.c.key).subquery()
    rows = session.execute(select(_tags.c.name, first.c.contacts).join(first, first.c.id == _tags.c.id)
                           .order_by(first.c.contacts.desc(), _tags.c.name))
    return [(name, count) for name, count in rows]


def names_by_contact(session: Session, contact_ids: list[int]) -> dict[int, list[str]]:
    """Each contact's tags, in the order they were given (the CSV export reads them a chunk at a time)."""
    found: dict[int, list[str]] = {}
    for chunk in chunks(contact_ids):
        for contact_id, name in session.execute(select(_tags.c.contact_id, _tags.c.name)
                                                .where(_tags.c.contact_id.in_(chunk)).order_by(_tags.c.id)):
            found.setdefault(contact_id, []).append(name)
    return found


def _forget_loaded(session: Session, contact_ids: set[int]) -> None:
    # Contacts already loaded in this session read their tags again on next use.
    for contact_id in contact_ids:
        contact = session.identity_map.get(identity_key(Contact, contact_id))
        if contact is not None:
            session.expire(contact, ["tag_rows"])
