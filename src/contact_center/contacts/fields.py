"""Fields a business defines for its contacts: the amount due, the due date, the contract.

An admin defines a field (key, Portuguese label, type); each contact holds at most one value of
it, validated by type and stored typed (contacts.models.ContactFieldValue) so that filters on a
million contacts read an index range. This module is the one writer of both tables.

Values are accepted the ways Brazilians write them: money as ``1.234,56``, ``1234,56``,
``1234.56`` or ``R$ 1.234,56``; dates as ``15/11/2025`` or ``2025-11-15``; booleans as
sim/não (or true/false, 1/0). Templates and the API get them typed: money as Decimal, dates as
date, integers as int, booleans as bool.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session, selectinload

from contact_center.contacts.models import FIELD_TYPES, Contact, ContactField, ContactFieldValue
from contact_center.db import chunks
from contact_center.errors import Conflict, InvalidInput, InvalidValue, NotFound
from contact_center.money import brl_digits
from contact_center.translations import Words

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names a template or an import already gives a contact: a field may not shadow them.
RESERVED_KEYS = frozenset({*Contact.__table__.columns.keys(), "first_name", "fields", "field_values"})
TYPE_LABELS = {"text": "texto", "integer": "número inteiro", "money": "valor em reais", "date": "data",
               "boolean": "sim/não", "choice": "lista de opções"}
MAX_TEXT = 500
MAX_LABEL = 80
MAX_CHOICES = 100
# Money is kept in cents in a 64-bit column: this bound keeps every sum far from overflowing.
MAX_CENTS = 10**15
MAX_INTEGER = 10**15
# The loader option for reading many contacts with their values (a query per chunk, not per contact).
WITH_FIELDS = selectinload(Contact.field_values)
# A list filtered on fields counts its matches up to this many (then says "more than"): an exact
# count reads every match, a page only the rows it shows.
COUNT_LIMIT = 1000
RANGE_SUFFIXES = {"_from": ">=", "_min": ">=", "_to": "<=", "_max": "<="}

_TRUE = frozenset({"sim", "s", "true", "t", "yes", "y", "1", "verdadeiro", "v", "x"})
_FALSE = frozenset({"não", "nao", "n", "false", "f", "no", "0", "falso"})
_BR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_THOUSANDS_ONLY = re.compile(r"^\d{1,3}(\.\d{3})+$")


# What a valid value of each type looks like (text and choice say it with their limits).
EXPECTED = {"integer": Words("um número inteiro, como 12"), "money": Words("um valor em reais, como 1.234,56"),
            "date": Words("uma data, como 15/11/2025"), "boolean": Words("sim ou não")}


@dataclass(frozen=True)
class FieldDefinition:
    """A field as the rest of the product sees it (never the ORM row)."""

    id: int
    key: str
    label: str
    type: str
    choices: tuple[str, ...]
    position: int

    @property
    def expected(self) -> Words:
        """What a valid value looks like, in the words an operator reads."""
        if self.type == "text":
            return Words("um texto de até {most} caracteres", most=MAX_TEXT)
        if self.type == "choice":
            return Words("uma das opções: {choices}", choices=", ".join(self.choices))
        return EXPECTED[self.type]

    def as_dict(self) -> dict:
        return {"id": self.id, "key": self.key, "label": self.label, "type": self.type,
                "choices": list(self.choices) if self.type == "choice" else None, "position": self.position}


def _definition(row: ContactField) -> FieldDefinition:
    return FieldDefinition(row.id, row.key, row.label, row.type, tuple(row.choices or ()), row.position)


class FieldValueError(InvalidValue):
    """A value that does not fit its field; the message names the field and the expected form."""


# ---------------------------------------------------------------- values: parse, store, read

def parse(field: FieldDefinition, raw: Any) -> int | date | str | None:
    """`raw` (as typed in a form, a CSV cell or JSON) as the value stored for `field`: cents for
    money, 0/1 for booleans, a date, or text. None or blank means no value."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = _PARSERS[field.type](field, raw.strip() if isinstance(raw, str) else raw)
    except (ValueError, InvalidOperation, OverflowError):
        value = None
    if value is None:
        raise FieldValueError("{key}: esperado {expected}; recebido {shown}", key=field.key, expected=field.expected,
                              shown=_shown(raw))
    return value


def _shown(raw: Any) -> str:
    text = str(raw)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _parse_text(field: FieldDefinition, raw: Any) -> str | None:
    return raw if isinstance(raw, str) and len(raw) <= MAX_TEXT else None


def _parse_integer(field: FieldDefinition, raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, str) and re.fullmatch(r"-?(\d+|\d{1,3}(\.\d{3})+)", raw):
        number = int(raw.replace(".", ""))
    else:
        return None
    return number if abs(number) <= MAX_INTEGER else None


def parse_money(raw: Any) -> int | None:
    """Cents of an amount written `1.234,56`, `1234,56`, `1234.56`, `R$ 1.234,56` (or a JSON number);
    None when it is not an amount in reais (more than two decimals, letters…)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float, Decimal)):
        amount = Decimal(str(raw))
    elif isinstance(raw, str):
        text = raw.replace("R$", "").replace(" ", "").replace("\u00a0", "")
        negative = text.startswith("-")
        text = text.removeprefix("-")
        if not re.fullmatch(r"[\d.,]+", text) or not text[0].isdigit():
            return None
        if "," in text:  # Brazilian: dots group thousands, the comma is the decimal separator
            whole, _, cents = text.rpartition(",")
            if "." in cents or (whole and not re.fullmatch(r"\d+|\d{1,3}(\.\d{3})+", whole)):
                return None
            text = whole.replace(".", "") + "." + cents
        elif _THOUSANDS_ONLY.match(text):
            text = text.replace(".", "")  # 1.234 is a thousand two hundred and thirty-four reais
        elif text.count(".") > 1:
            return None
        amount = Decimal(("-" if negative else "") + text)
    else:
        return None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:
        return None
    cents = int(amount * 100)
    return cents if abs(cents) <= MAX_CENTS else None


def _parse_money(field: FieldDefinition, raw: Any) -> int | None:
    return parse_money(raw)


def parse_date(raw: Any) -> date | None:
    """A date written 15/11/2025 or 2025-11-15 (or a date); None when it is neither or not a real day."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str):
        return None
    if match := _BR_DATE.match(raw):
        day, month, year = map(int, match.groups())
    elif match := _ISO_DATE.match(raw):
        year, month, day = map(int, match.groups())
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _parse_date(field: FieldDefinition, raw: Any) -> date | None:
    return parse_date(raw)


def _parse_boolean(field: FieldDefinition, raw: Any) -> int | None:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, str):
        word = raw.lower()
        if word in _TRUE:
            return 1
        if word in _FALSE:
            return 0
    return None


def _parse_choice(field: FieldDefinition, raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    folded = raw.casefold()
    return next((choice for choice in field.choices if choice.casefold() == folded), None)


_PARSERS = {"text": _parse_text, "integer": _parse_integer, "money": _parse_money, "date": _parse_date,
            "boolean": _parse_boolean, "choice": _parse_choice}
_COLUMN = {"text": "text", "choice": "text", "integer": "number", "money": "number", "boolean": "number",
           "date": "day"}


def typed(field: FieldDefinition | ContactField, stored: int | date | str | None) -> Any:
    """A stored value as templates and the API see it: Decimal reais, date, int, bool or str."""
    if stored is None:
        return None
    if field.type == "money":
        return (Decimal(stored) / 100).quantize(Decimal("0.01"))
    if field.type == "boolean":
        return bool(stored)
    return stored


def _stored(row: ContactFieldValue) -> int | date | str | None:
    return getattr(row, _COLUMN[row.field.type])


def values_of(contact: Contact) -> dict[str, Any]:
    """The contact's values by key, typed (reads `contact.field_values`: load it with
    selectinload when reading many contacts)."""
    return {row.field.key: typed(row.field, _stored(row)) for row in contact.field_values}


def values_for(session: Session, contact_ids: Iterable[int],
               known: Iterable[FieldDefinition] | None = None) -> dict[int, dict[str, Any]]:
    """Many contacts' values at once, typed, by contact id (contacts without values are absent).
    `known`: the field definitions, when the caller has read them already (a batch, an export)."""
    by_id = {d.id: d for d in (definitions(session) if known is None else known)}
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(list(contact_ids)):
        rows = session.execute(select(ContactFieldValue.contact_id, ContactFieldValue.field_id,
                                      ContactFieldValue.number, ContactFieldValue.day, ContactFieldValue.text)
                               .where(ContactFieldValue.contact_id.in_(chunk)))
        for contact_id, field_id, number, day, text in rows:
            field = by_id[field_id]
            stored = {"number": number, "day": day, "text": text}[_COLUMN[field.type]]
            found.setdefault(contact_id, {})[field.key] = typed(field, stored)
    return found


def check_values(fields_by_key: Mapping[str, FieldDefinition], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of `values` parsed for its field, or InvalidInput naming the first that fails
    (`fields.<key>`): an unknown key, or a value of the wrong form."""
    parsed = {}
    for key, raw in values.items():
        field = fields_by_key.get(key)
        if field is None:
            known = ", ".join(fields_by_key) or "nenhum campo definido"
            raise InvalidInput("{key}: campo desconhecido (campos: {known})",
                               key=key, known=known, field=f"fields.{key}")
        try:
            parsed[key] = parse(field, raw)
        except FieldValueError as exc:
            raise InvalidInput(exc, field=f"fields.{key}") from None
    return parsed


def set_values(session: Session, contact: Contact, values: Mapping[str, Any]) -> None:
    """Set the contact's values for the keys given (None or blank clears one); every value is
    checked first, so a bad one changes nothing. Flushes, does not commit."""
    if not values:
        return
    fields_by_key = {d.key: d for d in definitions(session)}
    parsed = check_values(fields_by_key, values)
    if contact.id is None:
        session.flush()
    current = {row.field_id: row for row in contact.field_values}
    for key, stored in parsed.items():
        field = fields_by_key[key]
        row = current.get(field.id)
        if stored is None:
            if row is not None:
                contact.field_values.remove(row)
            continue
        if row is None:
            row = ContactFieldValue(contact_id=contact.id, field_id=field.id)
            row.field = session.get(ContactField, field.id)
            contact.field_values.append(row)
        row.number = row.day = row.text = None
        setattr(row, _COLUMN[field.type], stored)
    session.flush()


def erase_values(session: Session, contact_id: int) -> int:
    """An LGPD erasure: the contact's values of every field go; how many there were."""
    return session.execute(delete(ContactFieldValue).where(ContactFieldValue.contact_id == contact_id)
                           .execution_options(synchronize_session=False)).rowcount


def write_parsed(session: Session, by_contact: Mapping[int, Mapping[int, Any]], types: Mapping[int, str]) -> None:
    """Bulk upsert of already parsed values ({contact id: {field id: stored}}), for imports: one
    delete and one insert per batch instead of an ORM round trip per value. Blank values were
    dropped before (an empty cell never clears a value)."""
    pairs = [(contact_id, field_id) for contact_id, values in by_contact.items() for field_id in values]
    if not pairs:
        return
    table = ContactFieldValue.__table__
    for field_id in {f for _, f in pairs}:
        ids = [c for c, f in pairs if f == field_id]
        for chunk in chunks(ids):
            session.execute(delete(table).where(table.c.field_id == field_id, table.c.contact_id.in_(chunk)))
    rows = []
    for contact_id, values in by_contact.items():
        for field_id, stored in values.items():
            row = {"contact_id": contact_id, "field_id": field_id, "number": None, "day": None, "text": None}
            row[_COLUMN[types[field_id]]] = stored
            rows.append(row)
    session.execute(table.insert(), rows)


# ---------------------------------------------------------------- definitions

def definitions(session: Session) -> list[FieldDefinition]:
    """Every field, in the order the panel shows them."""
    return [_definition(row) for row in session.scalars(select(ContactField).order_by(ContactField.position,
                                                                                       ContactField.id))]


def get_field(session: Session, key: str) -> ContactField:
    row = session.scalar(select(ContactField).where(ContactField.key == key))
    if row is None:
        raise NotFound("campo '{key}' não existe", key=key, field="key")
    return row


def _clean_choices(kind: str, choices: Iterable[str] | None) -> list[str] | None:
    if kind != "choice":
        if choices:
            raise InvalidInput("choices: só um campo do tipo choice (lista de opções) tem opções", field="choices")
        return None
    cleaned = list(dict.fromkeys(c.strip() for c in (choices or []) if c and c.strip()))
    if not cleaned:
        raise InvalidInput("choices: um campo do tipo choice precisa de ao menos uma opção", field="choices")
    if len(cleaned) > MAX_CHOICES or any(len(c) > MAX_TEXT for c in cleaned):
        raise InvalidInput("choices: até {MAX_CHOICES} opções de até {MAX_TEXT} caracteres",
                           MAX_CHOICES=MAX_CHOICES, MAX_TEXT=MAX_TEXT, field="choices")
    return cleaned


def _clean_label(label: str | None) -> str:
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL:
        raise InvalidInput("label: o rótulo é obrigatório, com até {MAX_LABEL} caracteres",
                           MAX_LABEL=MAX_LABEL, field="label")
    return label


def add_field(session: Session, *, key: str, label: str, type: str, choices: Iterable[str] | None = None,
              position: int | None = None, actor_id: int | None = None, via: str = "api") -> FieldDefinition:
    from contact_center.audit.service import record

    key = (key or "").strip()
    if not KEY_PATTERN.match(key):
        raise InvalidInput("key: {shown} não serve; esperado letras minúsculas sem acento, números e _, começando "
                           "por letra, até 40 caracteres (como valor_parcela)", field="key", shown=_shown(key))
    if key in RESERVED_KEYS:
        raise InvalidInput("key: '{key}' já é um dado do contato; escolha outro nome", key=key, field="key")
    if type not in FIELD_TYPES:
        raise InvalidInput("type: {shown} não é um tipo; esperado um de: {types}", field="type", shown=_shown(type),
                           types=", ".join(FIELD_TYPES))
    label = _clean_label(label)
    cleaned = _clean_choices(type, choices)
    if session.scalar(select(ContactField.id).where(ContactField.key == key)) is not None:
        raise Conflict("key: já existe um campo '{key}'", key=key, field="key")
    if position is None:
        position = (session.scalar(select(func.max(ContactField.position))) or 0) + 1
    row = ContactField(key=key, label=label, type=type, choices=cleaned, position=position)
    session.add(row)
    session.flush()
    record(session, action="contact_field.create", subject_type="contact_field", subject_id=row.id,
           actor_id=actor_id, via=via, key=key, type=type)
    log.info("contact field %s (%s) added", key, type)
    return _definition(row)


def update_field(session: Session, key: str, *, label: str | None = None, choices: Iterable[str] | None = None,
                 position: int | None = None, actor_id: int | None = None, via: str = "api") -> FieldDefinition:
    """Change a field's label, choices or position (its key and type stay: values depend on them).
    A choice still held by some contact cannot be dropped."""
    from contact_center.audit.service import record

    row = get_field(session, key)
    if label is not None:
        row.label = _clean_label(label)
    if choices is not None:
        cleaned = _clean_choices(row.type, choices)
        dropped = set(row.choices or ()) - set(cleaned or ())
        if dropped:
            held = session.scalar(select(func.count()).where(ContactFieldValue.field_id == row.id,
                                                             ContactFieldValue.text.in_(dropped)))
            if held:
                raise Conflict("choices: {held} contato(s) têm {dropped}; mude-os antes de tirar a opção",
                               field="choices", held=held, dropped=", ".join(sorted(dropped)))
        row.choices = cleaned
    if position is not None:
        row.position = position
    session.flush()
    record(session, action="contact_field.update", subject_type="contact_field", subject_id=row.id,
           actor_id=actor_id, via=via, key=key)
    return _definition(row)


def count_values(session: Session, field_id: int) -> int:
    return session.scalar(select(func.count()).where(ContactFieldValue.field_id == field_id)) or 0


def remove_field(session: Session, key: str, *, confirm: bool = False, actor_id: int | None = None,
                 via: str = "api") -> int:
    """Remove a field and its values; a field some contacts hold a value of is only removed with
    `confirm` (Conflict says how many). Returns how many values went with it."""
    from contact_center.audit.service import record

    row = get_field(session, key)
    held = count_values(session, row.id)
    if held and not confirm:
        raise Conflict("{held} contato(s) têm um valor em '{key}'; confirme para remover o campo e esses valores",
                       held=held, key=key,
                       field="confirm")
    session.execute(delete(ContactFieldValue).where(ContactFieldValue.field_id == row.id))
    session.delete(row)
    session.flush()
    record(session, action="contact_field.delete", subject_type="contact_field", subject_id=row.id,
           actor_id=actor_id, via=via, key=key, values=held)
    log.info("contact field %s removed with %d values", key, held)
    return held


# ---------------------------------------------------------------- filters

@dataclass(frozen=True)
class FieldFilter:
    field: FieldDefinition
    operator: str  # "=", ">=", "<="
    value: int | date | str


def parse_filters(session: Session, params: Iterable[tuple[str, str]]) -> list[FieldFilter]:
    """Filters from query parameters `field.KEY=value` (equality), `field.KEY_from` / `field.KEY_min`
    (at least) and `field.KEY_to` / `field.KEY_max` (at most), each value written as for its field.
    An unknown key, a range on a text field or a malformed value is an InvalidInput naming the
    parameter."""
    params = [(name, value) for name, value in params if name.startswith("field.")]
    if not params:
        return []
    by_key = {d.key: d for d in definitions(session)}
    filters = []
    for name, raw in params:
        key, operator = name.removeprefix("field."), "="
        if key not in by_key:
            for suffix, op in RANGE_SUFFIXES.items():
                if key.endswith(suffix) and key.removesuffix(suffix) in by_key:
                    key, operator = key.removesuffix(suffix), op
                    break
        field = by_key.get(key)
        if field is None:
            raise InvalidInput("{name}: campo desconhecido (campos: {keys})", field=name, name=name,
                               keys=", ".join(by_key) or "nenhum")
        if operator != "=" and field.type not in ("integer", "money", "date"):
            raise InvalidInput("{name}: só campos de número, valor ou data têm intervalo; use field.{key}=…",
                               name=name, key=key,
                               field=name)
        if not raw.strip():
            continue
        try:
            value = parse(field, raw)
        except FieldValueError as exc:
            raise InvalidInput(exc, field=name, key=name) from None
        filters.append(FieldFilter(field, operator, value))
    return filters


def _closed_range_first(group: list[FieldFilter]) -> int:
    operators = {item.operator for item in group}
    return 0 if {">=", "<="} <= operators else 1 if "=" in operators else 2


_ALIASES: list = []


def _value_alias(position: int):
    """The same alias objects every time: the statement's cache key then repeats, and SQLAlchemy
    compiles a filter's SQL once, not on each request."""
    while len(_ALIASES) <= position:
        _ALIASES.append(ContactFieldValue.__table__.alias(f"v{len(_ALIASES)}"))
    return _ALIASES[position]


def filtered(query, filters: list[FieldFilter], contact_id=Contact.id):
    """`query` narrowed to the contacts whose values pass every filter, and ordered by the first
    field filtered (a closed range first: the due dates of a month), then id. `query` selects
    Contact, or (with `contact_id=None`) nothing yet: it then selects the matching contact ids from
    the values alone, which is what counting needs.

    One value row is joined per field: the first field's index (field, value, contact) is read in
    order, and each contact's other values are looked up by primary key, so a page costs about the
    rows it shows, not the contacts that match (a due-date month of a million contacts is 40,000)."""
    by_field: dict[int, list[FieldFilter]] = {}
    for item in filters:
        by_field.setdefault(item.field.id, []).append(item)
    groups = sorted(by_field.values(), key=_closed_range_first)
    order = None
    for position, items in enumerate(groups):
        alias = _value_alias(position)
        column = alias.c[_COLUMN[items[0].field.type]]
        on = [alias.c.field_id == items[0].field.id]
        for item in items:
            on.append({"=": column == item.value, ">=": column >= item.value, "<=": column <= item.value}[item.operator])
        if contact_id is None:  # the first value table is the query's own
            contact_id = alias.c.contact_id
            query = select(contact_id).select_from(alias).where(*on)
        else:
            query = query.join(alias, and_(alias.c.contact_id == contact_id, *on))
        if order is None:
            order = column
    return query.order_by(order, contact_id)


# ---------------------------------------------------------------- text, for CSV files and forms

def as_text(field: FieldDefinition | ContactField, value: Any) -> str:
    """A typed value written the Brazilian way (1.234,56; 15/11/2025; sim/não), which `parse` reads back."""
    if value is None:
        return ""
    if field.type == "money":
        return ("-" if value < 0 else "") + brl_digits(value)
    if field.type == "date":
        return value.strftime("%d/%m/%Y")
    if field.type == "boolean":
        return "sim" if value else "não"
    return str(value)
