"""Contacts from Odoo's res.partner: full or incremental by write_date, a page at a time.

* Pages of partners in (write_date, id) order, each asked for with a keyset domain ("after the
  last one stored"), so partners written while the sync runs are neither skipped nor read twice.
* Each page goes through the contacts import's checks and batch writer (contacts/csv_io.py), the
  one writer of the contacts table: a partner updates the contact that has its partner id, else the
  one without a partner that has its CPF (vat) or phone (any written form), else becomes a new
  contact that keeps its partner id. A partner whose CPF or phone belongs to a contact of another
  partner is rejected, never made a second contact. An empty Odoo field never clears ours.
* Each page commits on its own, and the mark (the last partner's write_date and id) moves only
  after its page has committed: a run that stops (Odoo went away, the process was killed) leaves
  what it stored and the mark at or before it; the next run continues from there.
* A partner that cannot become a contact (no name, an invalid CPF, no usable phone) is reported
  with its id and the reason; the rest go on.
* A partner whose contact was erased (LGPD: the tombstone keeps its partner id, marked erased_at)
  is skipped and counted, full run or incremental: Odoo still has the person, we must not again.
"""

from __future__ import annotations

import difflib
import html
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from contact_center import phones
from contact_center.contacts import fields as custom_fields
from contact_center.contacts.csv_io import BatchWriter, RowError, build_row
from contact_center.contacts.models import Contact
from contact_center.db import chunks, transaction, utcnow
from contact_center.errors import Conflict, DomainError
from contact_center.odoo.client import OdooClient, OdooError
from contact_center.odoo.config import FIELDS_VARIABLE, OdooConfig, check_target
from contact_center.odoo.models import OdooSyncState

log = logging.getLogger(__name__)

PAGE_SIZE = 2000
ORDER = "write_date asc, id asc"
MAX_REJECTIONS_IN_MEMORY = 10_000
STATE_ID = 1
LEASE = timedelta(minutes=10)  # a run renews it with every page; one killed holds the sync no longer

# Two numbers in one field: "(11) 90000-0001 / (11) 3333-4444", "... ou ...", "...; ...".
_SEVERAL_NUMBERS = re.compile(r"\s*(?:[/;|]|\bou\b|\se\s)\s*", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_NOT_DIGITS = re.compile(r"\D")


class OdooFieldMissing(OdooError):
    code = "odoo_field_missing"


class OdooSyncRunning(Conflict):
    code = "odoo_sync_running"


@dataclass(frozen=True, slots=True)
class Rejection:
    partner_id: int
    field: str  # the res.partner field, or "partner"
    reason: str


@dataclass
class SyncReport:
    full: bool = False
    total: int = 0  # partners Odoo had to send when the run started
    read: int = 0
    created: int = 0
    updated: int = 0  # partners that matched a contact we had (unchanged ones included)
    unchanged: int = 0
    merged_duplicates: list[int] = field(default_factory=list)  # partner ids whose contact an earlier partner wrote
    rejected: list[Rejection] = field(default_factory=list)  # the first MAX_REJECTIONS_IN_MEMORY
    rejected_count: int = 0
    skipped_erased: int = 0  # partners whose contact was erased (LGPD): not brought back
    mark: tuple[str, int] | None = None
    elapsed: float = 0.0
    changed_count: int = 0  # contacts the sync changed at least one value of
    changed_fields: dict[str, int] = field(default_factory=dict)  # field -> how many contacts

    def note_change(self, change) -> None:  # the batch writer's: one contact's changed values
        self.changed_count += 1
        for name in change.fields:
            self.changed_fields[name] = self.changed_fields.get(name, 0) + 1

    @property
    def partners_per_second(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    def reject(self, partner_id: int, field_name: str, reason: str) -> None:  # also called by the batch writer
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTIONS_IN_MEMORY:
            self.rejected.append(Rejection(partner_id, field_name, reason))


def sync_partners(session_factory: sessionmaker[Session], config: OdooConfig, *, full: bool = False,
                  client: OdooClient | None = None, page_size: int = PAGE_SIZE,
                  progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Pull partners changed since the mark (all of them with ``full``) into contacts; commits a page at
    a time. ``progress(read, total)`` after each page. Raises OdooError (login refused, a field
    missing, Odoo gone) after recording it in the state; what was stored before stays."""
    started = time.perf_counter()
    report = SyncReport(full=full)
    client = client or config.client()
    stored = _begin(session_factory)
    mark = None if full else stored
    try:
        client.login()
        with session_factory() as session:
            definitions = {d.key: d for d in custom_fields.definitions(session)}
        reader = _PartnerReader(config, client.fields_get(), definitions)
        report.total = client.search_count(_after(mark))
        if progress is not None:
            progress(0, report.total)
        writer = BatchWriter(session_factory, report, definitions.values())
        with ThreadPoolExecutor(1, thread_name_prefix="odoo-fetch") as fetcher:
            # The next page is read while this one is written: Odoo and our writes overlap.
            def fetch(after):
                return client.search_read(_after(after), reader.fields, order=ORDER, limit=page_size)

            upcoming = fetcher.submit(fetch, mark)
            while upcoming is not None:
                partners = upcoming.result()
                if not partners:
                    break
                page_mark = (partners[-1]["write_date"], partners[-1]["id"])
                upcoming = fetcher.submit(fetch, page_mark) if len(partners) >= page_size else None
                erased = _erased_partners(session_factory, [p["id"] for p in partners])
                report.skipped_erased += len(erased)
                rows = [row for row in (reader.row(p, report) for p in partners if p["id"] not in erased)
                        if row is not None]
                if rows:
                    writer.write(rows)  # commits
                report.read += len(partners)
                mark = page_mark
                _save(session_factory, report, mark)  # only now: the page above is committed
                if progress is not None:
                    progress(report.read, max(report.total, report.read))
    except Exception as exc:
        report.elapsed = time.perf_counter() - started
        message = exc.message if isinstance(exc, DomainError) else f"{exc.__class__.__name__}: {exc}"
        _save(session_factory, report, None, error=message)
        log.warning("odoo sync stopped after %d partner(s) (mark %s): %s", report.read, mark, message)
        raise
    report.mark = mark
    report.elapsed = time.perf_counter() - started
    _save(session_factory, report, None, finished=True)
    log.info("odoo sync%s: %d partner(s) read, %d created, %d updated (%d unchanged), %d rejected, "
             "%d skipped as erased in %.1f s", " (full)" if full else "", report.read, report.created, report.updated,
             report.unchanged, report.rejected_count, report.skipped_erased, report.elapsed)
    return report


def _erased_partners(session_factory: sessionmaker[Session], partner_ids: list[int]) -> set[int]:
    """Which of these partners' contacts were erased: their tombstones keep the partner id."""
    erased: set[int] = set()
    with transaction(session_factory) as session:
        for chunk in chunks(partner_ids):
            erased.update(session.scalars(select(Contact.odoo_partner_id).where(
                Contact.odoo_partner_id.in_(chunk), Contact.erased_at.is_not(None))))
    return erased


def _after(mark: tuple[str, int] | None) -> list:
    """The domain of the partners after the mark, in ORDER."""
    if mark is None:
        return []
    write_date, partner_id = mark
    return ["|", ("write_date", ">", write_date), "&", ("write_date", "=", write_date), ("id", ">", partner_id)]


# --- partners into rows ------------------------------------------------------------------------

class _PartnerReader:
    """Which res.partner fields to ask for, and how one partner becomes a contact row."""

    def __init__(self, config: OdooConfig, odoo_fields: dict[str, dict], definitions: dict | None = None):
        self.custom = definitions or {}  # the business's contact fields by key, which Odoo values may fill
        for target in config.sources:
            check_target(target, frozenset(self.custom))
        missing = [name for name in config.sources.values() if name not in odoo_fields]
        if missing:
            raise OdooFieldMissing(_missing_message(missing, config, odoo_fields), field="odoo_fields")
        if "write_date" not in odoo_fields:
            raise OdooFieldMissing("o Odoo não informa write_date de res.partner: a sincronização não sabe o que mudou",
                                   field="odoo")
        self.sources = config.sources
        self.html_fields = {name for name in config.sources.values() if odoo_fields[name].get("type") == "html"}
        self.fields = sorted({*config.sources.values(), "write_date"})

    def row(self, partner: dict, report: SyncReport):
        partner_id = partner["id"]
        cells: dict[str, str] = {}
        _apply_mapped(cells, partner, self.sources, self.html_fields)
        if not cells.get("name", "").strip():
            report.reject(partner_id, self.sources["name"], "o parceiro não tem nome")
            return None
        _split_phones(cells)
        if "document" in cells:
            cells["document"] = _cpf_or_nothing(cells["document"])
        if not any(cells.get(f, "").strip() for f in ("phone", "mobile", "document")):
            report.reject(partner_id, self._odoo_name("phone/mobile/document"),
                          "sem telefone, celular nem CPF: nada alcançaria este contato")
            return None
        try:
            return build_row(partner_id, cells, odoo_partner_id=partner_id, custom=self.custom)
        except RowError as error:  # the contacts import's checks of each value
            report.reject(partner_id, self._odoo_name(error.field), _in_portuguese(error))
            return None

    def _odoo_name(self, ours: str) -> str:
        return "/".join(self.sources.get(part, part) for part in ours.split("/"))


def _apply_mapped(contact_values: dict[str, str], partner: dict, sources: dict[str, str],
                  html_fields: set[str]) -> None:
    """Every value read from Odoo reaches the contact here: our field (built-in, or one the business
    defined) <- the partner's field, as text. The targets were checked once, by _PartnerReader."""
    for target, odoo_field in sources.items():
        text = _as_text(partner.get(odoo_field, False))
        if odoo_field in html_fields:
            text = html.unescape(_TAGS.sub(" ", text)).strip()
        if text:
            contact_values[target] = text


def _as_text(value) -> str:
    """XML-RPC's shapes as text: False is empty, a many2one [id, name] its name."""
    if value is False or value is None:
        return ""
    if isinstance(value, list):
        return str(value[1]) if len(value) == 2 and isinstance(value[0], int) else ", ".join(map(str, value))
    if value is True:
        return "sim"
    return str(value)


def _split_phones(cells: dict[str, str]) -> None:
    """Two numbers in one field are shared out, a mobile to mobile and a fixed line to phone, when the
    other field is empty (a third number is left out); a number written without its area code takes
    the area code of the partner's other number."""
    parts = {f: [p.strip() for p in _SEVERAL_NUMBERS.split(cells.pop(f, "")) if p.strip()] for f in ("mobile", "phone")}
    if len(parts["mobile"]) <= 1 and len(parts["phone"]) <= 1:
        chosen = {f: numbers[0] for f, numbers in parts.items() if numbers}
    else:
        chosen = {}
        rest = []
        for raw in parts["mobile"] + parts["phone"]:
            kind = "mobile" if _e164(raw) and phones.is_mobile(_e164(raw)) else "phone"
            if kind in chosen:
                rest.append(raw)
            else:
                chosen[kind] = raw
        for f in ("mobile", "phone"):
            if f not in chosen and rest:
                chosen[f] = rest.pop(0)
    for f, raw in chosen.items():
        if 8 <= len(_NOT_DIGITS.sub("", raw)) <= 9 and not raw.startswith(("0", "+")):
            area_code = next((e164[3:5] for other in chosen.values()
                              if other is not raw and (e164 := _e164(other)) and e164.startswith("+55")), None)
            if area_code:
                raw = f"({area_code}) {raw}"
        cells[f] = raw


def _e164(raw: str) -> str | None:
    try:
        return phones.normalize(raw)
    except phones.PhoneNumberError:
        return None


def _cpf_or_nothing(vat: str) -> str:
    """Odoo's vat as a CPF: 'BR' in front is Odoo's country prefix; a CNPJ (a company's 14 digits) is not a
    CPF and is left out, as the contact has no place for it."""
    value = vat.strip()
    if value[:2].upper() == "BR":
        value = value[2:].strip()
    return "" if len(_NOT_DIGITS.sub("", value)) == 14 else value


_REASON_PREFIX = {"name": "nome inválido", "phone": "telefone inválido", "mobile": "celular inválido",
                  "document": "CPF inválido", "email": "e-mail inválido"}


def _in_portuguese(error: RowError) -> str:
    prefix = _REASON_PREFIX.get(error.field)
    return f"{prefix}: {error.reason}" if prefix else error.reason


def _missing_message(missing: list[str], config: OdooConfig, odoo_fields: dict[str, dict]) -> str:
    names = sorted(odoo_fields)
    custom = [n for n in names if n.startswith("x_")]
    parts = []
    for name in missing:
        target = next(t for t, s in config.sources.items() if s == name)
        close = difflib.get_close_matches(name, names, n=3)
        parts.append(f"o campo {name!r} (para {target!r}) não existe em res.partner no Odoo"
                     + (f"; parecidos: {', '.join(close)}" if close else ""))
    known = f"campos personalizados que existem: {', '.join(custom)}" if custom else \
        f"campos que existem: {', '.join(names[:40])}{'…' if len(names) > 40 else ''}"
    return f"{'; '.join(parts)}. Confira {FIELDS_VARIABLE} ({known})"


# --- the state row (this module is its one writer) ------------------------------------------------

def read_state(session: Session) -> OdooSyncState | None:
    return session.get(OdooSyncState, STATE_ID)


def sync_due(session_factory: sessionmaker[Session], interval_minutes: int) -> bool:
    """Whether the periodic sync should run: never ran, or its last run started that long ago."""
    with transaction(session_factory) as session:
        state = read_state(session)
        started = state.last_started_at if state else None
    return started is None or utcnow() - started >= timedelta(minutes=interval_minutes)


def _state(session: Session) -> OdooSyncState:
    state = session.get(OdooSyncState, STATE_ID, with_for_update=True)
    if state is None:
        state = OdooSyncState(id=STATE_ID, last_read=0, last_created=0, last_updated=0, last_unchanged=0,
                              last_rejected=0, last_skipped_erased=0)
        session.add(state)
    return state


def _begin(session_factory: sessionmaker[Session]) -> tuple[str, int] | None:
    """Take the sync's lease and record the start; the stored mark. OdooSyncRunning when another run
    holds the lease."""
    with transaction(session_factory) as session:
        state = _state(session)
        now = utcnow()
        if state.running_until is not None and state.running_until > now:
            raise OdooSyncRunning("outra sincronização com o Odoo está em andamento desde {since} UTC (a periódica ou "
                                  "outro comando); espere ela terminar e veja `contact-center odoo status`",
                                  field="odoo", since=f"{state.last_started_at:%d/%m/%Y %H:%M:%S}")
        state.running_until = now + LEASE
        state.last_started_at = now
        state.last_finished_at = None
        state.last_read = state.last_created = state.last_updated = state.last_unchanged = state.last_rejected = 0
        state.last_skipped_erased = 0
        if state.mark_write_date is None:
            return None
        return state.mark_write_date, state.mark_partner_id


def _save(session_factory: sessionmaker[Session], report: SyncReport, mark: tuple[str, int] | None, *,
          finished: bool = False, error: str | None = None) -> None:
    with transaction(session_factory) as session:
        state = _state(session)
        if mark is not None:
            state.mark_write_date, state.mark_partner_id = mark
            state.running_until = utcnow() + LEASE
        state.last_read, state.last_created, state.last_updated = report.read, report.created, report.updated
        state.last_unchanged, state.last_rejected = report.unchanged, report.rejected_count
        state.last_skipped_erased = report.skipped_erased
        if finished or error is not None:
            state.last_finished_at = utcnow()
            state.last_error = error
            state.running_until = None
        if finished:
            state.last_succeeded_at = state.last_finished_at
