"""Contacts in and out of CSV files: the spreadsheets our customers keep their clients in.

Import (`import_contacts`)
    Streams the file (a million rows import in well under 300 MB), validates every row with the
    same rules as the contacts service and update-or-creates contacts a batch at a time.

    * Encoding: UTF-8 with or without BOM; a file that is not valid UTF-8 is read as cp1252 (what
      Brazilian Excel writes), or latin-1 when it is not cp1252 either. Files given by path or as a
      seekable binary stream are scanned once for that before the import starts.
    * Delimiter: ``,`` or ``;`` (Brazilian Excel), sniffed from the first KB unless given.
    * Columns: headers are matched case- and accent-insensitively, Portuguese aliases included
      (nome, telefone, celular, whatsapp, e-mail, cpf, observações...), and so are the business's
      fields (contacts/fields.py) by key or label. ``mapping`` (CSV header -> our field or a
      field's key, ``"-"`` to ignore a column) takes precedence; the other headers are still
      recognised. Unknown columns are ignored and listed in the report. A field's value is checked
      by its type (1.234,56; 15/11/2025; sim/não) like any other cell.
    * Matching, in order: same CPF; else same phone match key (exact E.164 first, then the oldest
      contact, like ``service.find_by_phone``), skipping contacts that have a *different* CPF;
      else a new contact.
    * Only the columns present in the file are written, and **an empty cell never clears a
      field**: it means "keep what the contact has" (a new contact gets no value / ``False``).
      Clearing a field is done in the app, not by import.
    * A row that repeats a contact already written by an earlier row of the same file (same CPF or
      phone key) updates that contact (last row wins) and is reported in ``merged_duplicates``.
    * Tags (a ``tags``/``etiquetas`` column, separated by ``;`` or ``,`` inside the cell, which
      is then in quotes) are added to the contact's; the ones it has stay.
    * A bad row is rejected with its line number (the physical line where the record starts,
      header = line 1) and the reason; it changes nothing. A row with no phone, mobile or CPF is
      rejected too: nothing could reach the contact nor match it on the next import.
    * Each batch commits on its own: if the import stops half-way, the batches before stay in and
      running the same file again is safe (it updates what is already there).
    * ``dry_run=True`` runs the same path without writing: the report says how many contacts would
      be created and updated, which fields of which contacts would change (``changes``, names
      included; the business's fields by key, their values as text) and which rows would be rejected. ``preview_import`` parses the first rows only,
      as they would be stored, for a mapping screen.
    * The rejections file (``write_rejections``) keeps each rejected row as it was, followed by its
      line, field and reason: fixed in a spreadsheet, it imports again as it is.

Export (`export_contacts`) writes every contact (or those matching a search) as CSV, in id order,
a chunk at a time, tags separated by "; ".
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from sqlalchemy import DateTime, String, and_, bindparam, func, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from contact_center import phones
from contact_center.audit.service import record
from contact_center.contacts import fields as custom_fields
from contact_center.contacts import tags as contact_tags
from contact_center.contacts.documents import DocumentError, format_cpf, normalize_cpf
from contact_center.contacts.models import Contact
from contact_center.contacts.service import search_filter
from contact_center.db import UTCDateTime, chunks, transaction, utcnow
from contact_center.errors import InvalidInput

__all__ = [
    "EXPORT_HEADER",
    "FIELDS",
    "FIELD_LABELS",
    "ContactChange",
    "ImportFileError",
    "ImportReport",
    "PreviewRow",
    "RejectedRow",
    "BatchWriter",
    "RowError",
    "build_row",
    "export_contacts",
    "import_contacts",
    "preview_import",
    "rejection_reason",
]

CONTACT_FIELDS = ("name", "phone", "mobile", "email", "document", "notes", "opt_out_sms", "opt_out_whatsapp")
FIELDS = (*CONTACT_FIELDS, "tags")
EXPORT_HEADER = (*FIELDS, "phone_e164", "mobile_e164")

MAX_REJECTIONS_IN_MEMORY = 10_000
MAX_CHANGES_IN_MEMORY = 1000  # the contacts whose changes a report lists; all are counted
SNIFF_BYTES = 1024
LOOKUP_CHUNK = 500  # values per IN (...): far below SQLite's and PostgreSQL's parameter limits
ANALYZE_AFTER = 5000  # PostgreSQL: first ANALYZE after this many new contacts, then at each doubling
BATCH_ATTEMPTS = 3  # a batch that loses a race on the unique CPF is looked up and written again

# Same limits as the API (contacts.schemas) and the columns.
MAX_NAME = 200
MAX_PHONE = 64
MAX_NOTES = 10_000

# Header aliases, in canonical form (see _canonical): accents and punctuation removed, lower case.
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "nome", "nomecompleto", "nomedocliente", "nomecliente", "cliente", "fullname"),
    "phone": ("phone", "telefone", "fone", "tel", "telefonefixo", "fixo", "telefoneresidencial", "landline"),
    "mobile": ("mobile", "celular", "cel", "whatsapp", "whats", "zap", "telefonecelular", "mobilephone", "cellphone"),
    "email": ("email", "mail", "emailaddress", "enderecodeemail", "correioeletronico"),
    "document": ("document", "documento", "cpf", "doc", "numerocpf", "numerodocpf"),
    "notes": ("notes", "note", "observacoes", "observacao", "obs", "notas", "nota", "comentarios", "anotacoes"),
    "opt_out_sms": ("optoutsms", "naoenviarsms", "semsms", "bloqueiosms", "smsoptout"),
    "opt_out_whatsapp": ("optoutwhatsapp", "naoenviarwhatsapp", "semwhatsapp", "bloqueiowhatsapp", "whatsappoptout"),
    "tags": ("tags", "tag", "etiquetas", "etiqueta", "marcadores"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
_IGNORE = ("", "-", "ignore", "ignorar")

_TRUE = frozenset("sim s yes y true t verdadeiro v 1 x".split())
_FALSE = frozenset("não nao n no false f falso 0".split())

# Columns an import reads and writes (phone and mobile with their E.164 and match key).
_STATE = (
    "name", "phone", "phone_e164", "phone_key", "mobile", "mobile_e164", "mobile_key",
    "email", "document", "notes", "opt_out_sms", "opt_out_whatsapp", "odoo_partner_id",
)
_NEW_CONTACT = dict.fromkeys(_STATE) | {"opt_out_sms": False, "opt_out_whatsapp": False}
_contacts = Contact.__table__

# Our fields as an operator reads them (the rejections file, the import screens).
FIELD_LABELS = {
    "name": "nome", "phone": "telefone", "mobile": "celular", "email": "e-mail", "document": "CPF",
    "notes": "observações", "opt_out_sms": "não enviar SMS", "opt_out_whatsapp": "não enviar WhatsApp",
    "row": "linha", "phone/mobile/document": "telefone/celular/CPF",
}
# What each field expects, said in Portuguese in front of the parser's technical detail.
_EXPECTED = {
    "name": "nome obrigatório, de até 200 caracteres",
    "phone": "telefone inválido: use DDD e número, como (11) 3000-0001, ou +DDI para outro país",
    "mobile": "celular inválido: use DDD e número, como (11) 90000-0001, ou +DDI para outro país",
    "email": "e-mail inválido: use o formato nome@empresa.com.br",
    "document": "CPF inválido: 11 dígitos, com ou sem pontos e traço, e dígitos verificadores corretos",
    "notes": "observações de até 10.000 caracteres",
    "opt_out_sms": "use sim ou não (também s/n, 1/0, x)",
    "opt_out_whatsapp": "use sim ou não (também s/n, 1/0, x)",
    "row": "a linha tem mais colunas que o cabeçalho: um valor com o separador precisa estar entre aspas",
    "phone/mobile/document": "a linha não tem telefone, celular nem CPF: informe ao menos um deles",
}


def rejection_reason(field_name: str, reason: str) -> str:
    """A rejection as an operator reads it: what the field expects, in Portuguese, then the detail."""
    expected = _EXPECTED.get(field_name)
    return f"{expected} (detalhe: {reason})" if expected else reason


class ImportFileError(InvalidInput):
    """The file cannot be imported at all (empty, unreadable, no usable columns, bad mapping)."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int  # physical line where the record starts; the header is line 1
    field: str  # our field name, or "row" for a problem with the whole row
    reason: str
    record: tuple[str, ...] = field(default=(), compare=False)  # the row's cells as the file had them


@dataclass(frozen=True, slots=True)
class ContactChange:
    """What an import does (or, in a dry run, would do) to a contact that exists: field -> (before, after)."""

    line: int  # the last row of the file that wrote it
    contact_id: int
    name: str  # the name it had before
    fields: dict[str, tuple[Any, Any]]


# Rejections file: the file's own columns, then these (names no import alias uses, so they are ignored
# when the fixed file is imported again).
REJECTION_COLUMNS = ("linha", "campo", "motivo")


@dataclass
class ImportReport:
    rows_read: int = 0  # data rows, blank lines not counted
    created: int = 0
    updated: int = 0  # rows that updated a contact that existed before the import
    unchanged: int = 0  # of those, the rows whose contact already had every value
    merged_duplicates: list[int] = field(default_factory=list)  # lines that repeated an earlier row's contact
    rejected: list[RejectedRow] = field(default_factory=list)  # the first MAX_REJECTIONS_IN_MEMORY
    rejected_count: int = 0  # all of them
    encoding: str = ""
    delimiter: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # CSV header -> our field
    ignored_columns: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)  # the file's header as written
    changes: list[ContactChange] = field(default_factory=list)  # the first MAX_CHANGES_IN_MEMORY
    changed_count: int = 0  # contacts with at least one field changed
    changed_fields: dict[str, int] = field(default_factory=dict)  # field -> how many contacts
    elapsed: float = 0.0  # seconds
    _overflow: IO[str] | None = field(default=None, repr=False, compare=False)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.elapsed if self.elapsed > 0 else 0.0

    def reject(self, line: int, field_name: str, reason: str, record: list[str] | tuple[str, ...] = ()) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTIONS_IN_MEMORY:
            self.rejected.append(RejectedRow(line, field_name, reason, tuple(record)))
            return
        if self._overflow is None:  # the rest waits in a temporary file for write_rejections
            self._overflow = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")
        csv.writer(self._overflow).writerow(self._rejection_cells(RejectedRow(line, field_name, reason, tuple(record))))

    def note_change(self, change: ContactChange) -> None:
        self.changed_count += 1
        for name in change.fields:
            self.changed_fields[name] = self.changed_fields.get(name, 0) + 1
        if len(self.changes) < MAX_CHANGES_IN_MEMORY:
            self.changes.append(change)

    def _rejection_cells(self, rejected: RejectedRow) -> list:
        """The row as it was (padded or cut to the header's width), then line, field and reason."""
        width = len(self.header)
        cells = list(rejected.record[:width]) + [""] * (width - len(rejected.record))
        return [*cells, rejected.line, FIELD_LABELS.get(rejected.field, rejected.field),
                rejection_reason(rejected.field, rejected.reason)]

    def write_rejections(self, path: str | os.PathLike[str]) -> int:
        """Every rejected row, not only the ones kept in memory: the file's columns as they were,
        then linha, campo and motivo (in Portuguese), so the file can be fixed and imported again.

        UTF-8 with BOM, like the export, so that Excel shows the reasons' accents right; the
        file's own delimiter.
        """
        with open(path, "w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, delimiter=self.delimiter or ",")
            writer.writerow((*self.header, *REJECTION_COLUMNS))
            writer.writerows(self._rejection_cells(r) for r in self.rejected)
            if self._overflow is not None:
                self._overflow.flush()
                self._overflow.seek(0)
                writer.writerows(csv.reader(self._overflow))  # again, in the file's delimiter
                self._overflow.seek(0, io.SEEK_END)
        return self.rejected_count


# --- import ----------------------------------------------------------------------------------


def import_contacts(
    session_factory: sessionmaker[Session],
    source: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 2000,
    dry_run: bool = False,
) -> ImportReport:
    """Update-or-create contacts from a CSV file; see the module docstring for the rules.

    ``source`` is a path, a text stream, or a seekable binary stream (an upload). ``progress`` is
    called with the number of rows read so far every ``batch_size`` rows and at the end. Raises
    ImportFileError, before any row is written, when the file cannot be imported at all. With
    ``dry_run`` nothing is written and the report says what would be.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    report = ImportReport()
    with session_factory() as session:
        definitions = custom_fields.definitions(session)
    with _records(source, mapping, delimiter, report, definitions) as (parser, records):
        writer = _BatchWriter(session_factory, report, definitions, dry_run=dry_run)
        batch: list[_Row] = []
        next_progress = batch_size
        for line, record in records:
            row = parser.parse(line, record)
            if row is not None:
                batch.append(row)
                if len(batch) >= batch_size:
                    writer.write(batch)
                    batch = []
            if progress is not None and report.rows_read >= next_progress:
                progress(report.rows_read)
                next_progress = report.rows_read + batch_size
        if batch:
            writer.write(batch)
        if progress is not None:
            progress(report.rows_read)
    report.elapsed = time.perf_counter() - started
    return report


@dataclass(frozen=True, slots=True)
class PreviewRow:
    line: int
    cells: tuple[str, ...]  # as the file has them
    # our field -> the value as it would be stored, a business's field (by key) typed as fields.typed
    # gives it; empty when rejected
    values: dict[str, Any]
    rejected: RejectedRow | None


def preview_import(
    source: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    rows: int = 10,
    definitions=(),
) -> tuple[ImportReport, list[PreviewRow]]:
    """The first `rows` data rows as the import would store them (or reject them), read with the same
    parser; the report has the encoding, delimiter, header and which column maps to which field.
    Reads nothing from the database and writes nothing."""
    report = ImportReport()
    found: list[PreviewRow] = []
    with _records(source, mapping, delimiter, report, definitions) as (parser, records):
        for line, record in records:
            before = report.rejected_count
            row = parser.parse(line, record)
            if row is None:
                found.append(PreviewRow(line, tuple(record), {}, report.rejected[before]))
            else:
                values = {name: row.values[name] for name in FIELDS if name in row.values}
                values.update((d.key, custom_fields.typed(d, row.custom[d.id])) for d in definitions
                              if row.custom.get(d.id) is not None)
                found.append(PreviewRow(line, tuple(record), values, None))
            if len(found) >= rows:
                break
    return report, found


@contextmanager
def _records(source, mapping, delimiter, report: ImportReport, definitions=()):
    """(parser, the data records as (line, cells)) for a file; fills the report's encoding,
    delimiter, header and columns, and counts rows_read as records are taken."""
    if delimiter is not None and len(delimiter) != 1:
        raise ImportFileError("the delimiter must be one character, not {delimiter}", delimiter=repr(delimiter),
                              field="delimiter")
    with _open_text(source) as (text, encoding):
        report.encoding = encoding
        lines, sample = _with_sample(text)
        report.delimiter = delimiter or _sniff_delimiter(sample)
        reader = csv.reader(lines, delimiter=report.delimiter)
        header = next(reader, None)
        if header is None:
            raise ImportFileError("the file is empty: expected a header line with the column names")
        if header and header[0].startswith("\ufeff"):  # a text stream opened without utf-8-sig
            header[0] = header[0][1:]
        report.header = header
        parser = _RowParser(header, mapping, report, definitions)

        def records() -> Iterator[tuple[int, list[str]]]:
            previous = reader.line_num
            for record in reader:
                line = previous + 1  # where the record starts: a quoted field may span lines
                previous = reader.line_num
                if not any(record):
                    continue  # blank line, or an Excel row of empty cells
                report.rows_read += 1
                yield line, record

        try:
            yield parser, records()
        except csv.Error as exc:
            raise ImportFileError("the file is not a readable CSV file: {exc}", exc=exc, field="file") from None


@contextmanager
def _open_text(source) -> Iterator[tuple[IO[str], str]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as raw:
            yield from _binary_as_text(raw)
        return
    probe = source.read(0)
    if isinstance(probe, str):
        yield source, getattr(source, "encoding", None) or "text"
        return
    if not source.seekable():
        raise ImportFileError("a binary stream must be seekable (the encoding is detected before importing)")
    yield from _binary_as_text(source)


def _binary_as_text(raw: IO[bytes]) -> Iterator[tuple[IO[str], str]]:
    encoding = detect_encoding(raw)
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    try:
        yield text, encoding
    finally:
        text.detach()  # the caller's stream stays open


_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def detect_encoding(raw: IO[bytes], chunk_size: int = 1 << 20) -> str:
    """'utf-8-sig', 'utf-8', 'cp1252' or 'latin-1', reading the stream once and seeking back."""
    start = raw.tell()
    if raw.read(3) == codecs.BOM_UTF8:
        raw.seek(start)
        return "utf-8-sig"
    raw.seek(start)
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = cp1252 = True
    while chunk := raw.read(chunk_size):
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        if cp1252 and any(byte in chunk for byte in _CP1252_UNDEFINED):
            cp1252 = False
        if not utf8 and not cp1252:
            break
    if utf8:
        try:
            decoder.decode(b"", final=True)  # a file cut in the middle of a character
        except UnicodeDecodeError:
            utf8 = False
    raw.seek(start)
    return "utf-8" if utf8 else "cp1252" if cp1252 else "latin-1"


def _with_sample(text: IO[str]) -> tuple[Iterable[str], str]:
    """The first KB of the stream, and the stream's lines from the start."""
    if text.seekable():
        position = text.tell()
        sample = text.read(SNIFF_BYTES)
        text.seek(position)
        return text, sample
    sample = text.read(SNIFF_BYTES)
    while sample.endswith("\r"):  # keep a \r\n together
        more = text.read(1)
        if not more:
            break
        sample += more
    head = io.StringIO(sample + text.readline(), newline="")
    return _chain(head, text), sample


def _chain(*iterables: Iterable[str]) -> Iterator[str]:
    for iterable in iterables:
        yield from iterable


def _sniff_delimiter(sample: str) -> str:
    header = sample.splitlines()[0] if sample else ""
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    complete = sample[:cut] if cut > 0 else sample  # whole lines only
    try:
        guess = csv.Sniffer().sniff(complete, delimiters=",;").delimiter
    except csv.Error:
        guess = None
    if guess in (",", ";") and guess in header:
        return guess
    return ";" if header.count(";") > header.count(",") else ","


def _canonical(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch)).lower()


# --- rows --------------------------------------------------------------------------------------


class _RowError(Exception):
    def __init__(self, field_name: str, reason: str):
        self.field = field_name
        self.reason = reason


class _Row:
    __slots__ = ("line", "values", "document", "keys", "e164s", "odoo_partner_id", "tags", "custom")

    def __init__(self, line: int, odoo_partner_id: int | None = None):
        self.line = line  # the file's line; the partner id for a row from Odoo
        self.odoo_partner_id = odoo_partner_id  # matched first, and kept on the contact (odoo/sync.py)
        self.values: dict[str, Any] = {}  # only the non-empty cells, phones expanded to raw/e164/key
        self.tags: list[str] = []
        self.custom: dict[int, Any] = {}  # the business's fields: field id -> value as stored
        self.document: str | None = None
        self.keys: list[str] = []  # phone match keys
        self.e164s: list[str] = []
        if odoo_partner_id is not None:
            self.values["odoo_partner_id"] = odoo_partner_id


class _RowParser:
    """Maps the header to our fields and turns a record into a validated _Row (or a rejection)."""

    def __init__(self, header: list[str], mapping: Mapping[str, str] | None, report: ImportReport,
                 definitions: list[custom_fields.FieldDefinition] = ()):
        self.report = report
        self.width = len(header)
        self.custom = {d.key: d for d in definitions}
        columns = _plan_columns(header, mapping, report.delimiter, self.custom)
        report.columns = {header[index]: name for index, name in columns}
        taken = {index for index, _ in columns}
        report.ignored_columns = [h for i, h in enumerate(header) if i not in taken and h.strip()]
        order = {name: position for position, name in enumerate((*FIELDS, *self.custom))}
        # name first, so a row without a name is reported as such before anything else
        self.columns = [(index, name, getattr(self, f"_{_PARSER[name]}") if name in _PARSER else self._custom)
                        for index, name in sorted(columns, key=lambda c: order[c[1]])]

    def parse(self, line: int, record: list[str]) -> _Row | None:
        try:
            if len(record) > self.width and any(cell.strip() for cell in record[self.width:]):
                raise _RowError("row", f"the row has {len(record)} fields but the header has {self.width}"
                                   f" (a value with {self.report.delimiter!r} that is not in quotes?)")
            row = _Row(line)
            width = len(record)
            for index, name, parse in self.columns:
                if index < width:
                    cell = record[index].strip()
                    if cell:
                        parse(name, cell, row)
            if "name" not in row.values:
                raise _RowError("name", "name must not be empty")
            if row.document is None and not row.keys:
                raise _RowError("phone/mobile/document",
                                "the row has no phone, mobile or CPF: nothing could reach this contact or match it later")
        except _RowError as error:
            self.report.reject(line, error.field, error.reason, record)
            return None
        return row

    def _custom(self, name: str, cell: str, row: _Row) -> None:
        field = self.custom[name]
        try:
            row.custom[field.id] = custom_fields.parse(field, cell)
        except custom_fields.FieldValueError as exc:
            raise _RowError(name, str(exc)) from None

    @staticmethod
    def _text(name: str, cell: str, row: _Row) -> None:
        limit = MAX_NAME if name == "name" else MAX_NOTES
        if len(cell) > limit:
            raise _RowError(name, f"{name} is too long ({len(cell):,} characters; at most {limit:,})")
        row.values[name] = cell

    @staticmethod
    def _phone(name: str, cell: str, row: _Row) -> None:
        if len(cell) > MAX_PHONE:
            raise _RowError(name, f"{cell[:20]!r}... is too long to be a phone number ({len(cell)} characters)")
        try:
            identity = phones.identify(cell)
        except phones.PhoneNumberError as exc:
            raise _RowError(name, str(exc)) from None
        values = row.values
        values[name] = cell
        values[name + "_e164"] = identity.e164
        values[name + "_key"] = identity.key
        row.keys.append(identity.key)
        row.e164s.append(identity.e164)

    @staticmethod
    def _email(name: str, cell: str, row: _Row) -> None:
        try:
            row.values[name] = clean_email(cell)
        except ValueError as exc:
            raise _RowError(name, str(exc)) from None

    @staticmethod
    def _document(name: str, cell: str, row: _Row) -> None:
        try:
            row.values[name] = row.document = normalize_cpf(cell)
        except DocumentError as exc:
            raise _RowError(name, str(exc)) from None

    @staticmethod
    def _tags(name: str, cell: str, row: _Row) -> None:
        try:
            row.tags = contact_tags.split_cell(cell)
        except InvalidInput as exc:
            raise _RowError(name, exc.message) from None

    @staticmethod
    def _flag(name: str, cell: str, row: _Row) -> None:
        word = cell.lower()
        if word in _TRUE:
            row.values[name] = True
        elif word in _FALSE:
            row.values[name] = False
        else:
            raise _RowError(name, f"{cell!r} is not a yes/no value (use sim/não, yes/no, true/false, 1/0 or x)")


_PARSER = {
    "name": "text", "notes": "text", "phone": "phone", "mobile": "phone", "email": "email",
    "document": "document", "opt_out_sms": "flag", "opt_out_whatsapp": "flag", "tags": "tags",
}


def build_row(line: int, cells: Mapping[str, str], *, odoo_partner_id: int | None = None,
              custom: Mapping[str, custom_fields.FieldDefinition] | None = None) -> _Row:
    """A row from {our field or a custom field's key: text} (the Odoo sync), each value checked as a
    file's cell would be; raises RowError."""
    row = _Row(line, odoo_partner_id)
    for name, cell in cells.items():
        cell = cell.strip()
        if not cell:
            continue
        if custom and name in custom:
            try:
                row.custom[custom[name].id] = custom_fields.parse(custom[name], cell)
            except custom_fields.FieldValueError as exc:
                raise _RowError(name, str(exc)) from None
        else:
            getattr(_RowParser, f"_{_PARSER[name]}")(name, cell, row)
    return row


def _plan_columns(header: list[str], mapping: Mapping[str, str] | None, delimiter: str,
                  custom: Mapping[str, custom_fields.FieldDefinition] | None = None) -> list[tuple[int, str]]:
    """[(column index, our field or a custom field's key)]; raises ImportFileError when the file
    has nothing to import."""
    custom = custom or {}
    chosen: dict[str, int] = {}
    used: set[int] = set()
    stripped = [h.strip() for h in header]
    canonical = [_canonical(h) for h in header]
    for wanted, target in (mapping or {}).items():
        target_name = target.strip().lower()
        if target_name not in FIELDS and target_name not in custom and target_name not in _IGNORE:
            raise ImportFileError("mapping {wanted} -> {target}: unknown field {target}; the fields are {fields}",
                                  field="mapping", wanted=repr(wanted), target=repr(target),
                                  fields=", ".join((*FIELDS, *custom)))
        index = next((i for i, h in enumerate(stripped) if h == wanted.strip()), None)
        if index is None:
            index = next((i for i, c in enumerate(canonical) if c and c == _canonical(wanted)), None)
        if index is None:
            raise ImportFileError("mapping {wanted} -> {target}: the file has no column {wanted}; its columns are "
                                  "{columns}", field="mapping", wanted=repr(wanted), target=repr(target),
                                  columns=_quoted(header))
        used.add(index)
        if target_name in _IGNORE:
            continue
        if target_name in chosen:
            raise ImportFileError("two columns are mapped to {target}", target=repr(target_name), field="mapping")
        chosen[target_name] = index
    for index, key in enumerate(canonical):
        name = _ALIAS_TO_FIELD.get(key)
        if index in used or name is None or name in chosen:
            continue  # a second column for the same field is ignored (and listed as such)
        chosen[name] = index
    # A header that is a custom field's key or label maps to it by itself.
    by_header = {}
    for definition in custom.values():
        for written in (definition.label, definition.key):
            by_header.setdefault(_canonical(written), definition.key)
    for index, key in enumerate(canonical):
        name = by_header.get(key)
        if index in used or name is None or name in chosen or index in chosen.values():
            continue
        chosen[name] = index
    if "name" not in chosen or not {"phone", "mobile", "document"} & chosen.keys():
        raise ImportFileError("no usable columns: the file has {columns} (read with delimiter {delimiter}); expected "
                              "a name column (nome, name) and at least one of phone (telefone, fone), mobile "
                              "(celular, whatsapp) or document (cpf, documento)", field="columns",
                              columns=_quoted(header), delimiter=repr(delimiter))
    return [(index, name) for name, index in chosen.items()]


def _quoted(header: list[str]) -> str:
    shown = [repr(h) for h in header[:20]]
    if len(header) > 20:
        shown.append(f"... ({len(header)} columns)")
    return ", ".join(shown) if shown else "no columns"


# The common shape of an address, which email-validator (the API's EmailStr) always accepts and
# normalises by lower-casing the domain. Everything else goes to email-validator itself: it takes
# ~25 µs an address, too slow for a million rows, and is only needed for the unusual ones.
_SIMPLE_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,63}))"
)
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def clean_email(raw: str) -> str:
    """The address as the API would store it; ValueError with the reason when it is not one."""
    match = _SIMPLE_EMAIL.fullmatch(raw)
    if (
        match is not None
        and len(raw) <= 254
        and len(match["local"]) <= 64
        and "--" not in match["domain"]
        and match["tld"].lower() not in _SPECIAL_USE
    ):
        return f"{match['local']}@{match['domain'].lower()}"
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not a valid email address: {exc}") from None


# --- writing -----------------------------------------------------------------------------------


class _Target:
    """A contact a batch writes to: one that exists (id known) or one the batch creates."""

    __slots__ = ("id", "order", "state", "original", "seen", "line")

    def __init__(self, id_: int | None, order: int, state: dict[str, Any], seen: bool):
        self.id = id_
        self.order = order
        self.line = 0  # the last row that wrote it
        self.state = state
        self.original = dict(state) if id_ is not None else None
        self.seen = seen  # already written by an earlier row of this import

    def rank(self) -> tuple[int, int]:  # oldest first, like find_by_phone; new ones after
        return (0, self.id) if self.id is not None else (1, self.order)


class _BatchWriter:
    def __init__(self, session_factory: sessionmaker[Session], report: ImportReport,
                 definitions: Iterable[custom_fields.FieldDefinition] = (), *, dry_run: bool = False):
        self.session_factory = session_factory
        self.report = report
        self.touched = _IdSet()  # contacts written by this import, to tell duplicates from updates
        self.definitions = {d.id: d for d in definitions}  # the business's fields, for values and changes
        self.types = {d.id: d.type for d in self.definitions.values()}
        self.analyzed_at = 0  # contacts created by this import when PostgreSQL last analyzed the table
        self.dry_run = dry_run
        # A dry run creates nothing, so a later batch cannot find its new contacts in the database:
        # their CPFs and phone keys, to count a row repeating one as a duplicate, not a creation.
        self.would_create: set[str] = set()

    def write(self, rows: list[_Row]) -> None:
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                with transaction(self.session_factory) as session:
                    if not self.dry_run:
                        self._refresh_statistics(session)
                    outcome = self._write(session, rows)
                break
            except IntegrityError:
                # Someone else gave a CPF of this batch to a contact after we looked: look again.
                if attempt == BATCH_ATTEMPTS:
                    raise
        created, updated, unchanged, merged, ids, rejected = outcome
        self.report.created += created
        self.report.updated += updated
        self.report.unchanged += unchanged
        self.report.merged_duplicates.extend(merged)
        for line, field_name, reason in rejected:
            self.report.reject(line, field_name, reason)
        for contact_id in ids:
            self.touched.add(contact_id)

    def _refresh_statistics(self, session: Session) -> None:
        """ANALYZE the table on PostgreSQL each time the import has doubled what it created.

        A table filled by this import has no statistics yet (autovacuum has not seen it, or
        cannot: the rows are not committed when a caller wraps the import in a transaction), and
        the planner then scans the whole table for every IN (...) look-up. Measured on 100k rows:
        1,750 rows/s without, 12,000 with. About ten ANALYZEs for a million rows.
        """
        created = self.report.created
        if created - self.analyzed_at < max(ANALYZE_AFTER, self.analyzed_at):
            return
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sql_text(f"ANALYZE {_contacts.name}"))
        self.analyzed_at = created

    def _write(self, session: Session, rows: list[_Row]):
        # Rows from Odoo whose partner we have need no look-up by phone, and by CPF only when it changed.
        partner_ids = {row.odoo_partner_id for row in rows if row.odoo_partner_id is not None}
        known = _lookup(session, set(), set(), partner_ids) if partner_ids else []
        known_documents = {state["odoo_partner_id"]: state["document"] for state in known}
        rest = [row for row in rows if row.odoo_partner_id not in known_documents]
        documents = {row.document for row in rest if row.document is not None}
        documents |= {row.document for row in rows if row.document is not None and row.odoo_partner_id in known_documents
                      and row.document != known_documents[row.odoo_partner_id]}
        keys = {key for row in rest for key in row.keys}
        known_ids = {state["id"] for state in known}
        by_partner: dict[int, _Target] = {}
        by_document: dict[str, _Target] = {}
        by_key: dict[str, list[_Target]] = {}
        existing: list[_Target] = []
        for state in known + [s for s in _lookup(session, documents, keys) if s["id"] not in known_ids]:
            contact_id = state.pop("id")
            target = _Target(contact_id, 0, state, contact_id in self.touched)
            existing.append(target)
            if state["odoo_partner_id"] is not None:
                by_partner[state["odoo_partner_id"]] = target
            if state["document"] is not None:
                by_document[state["document"]] = target
            for key in (state["phone_key"], state["mobile_key"]):
                if key is not None:
                    by_key.setdefault(key, []).append(target)

        new: list[_Target] = []
        created = updated = 0
        merged: list[int] = []
        rejected: list[tuple[int, str, str]] = []
        matched: set[int] = set()  # contacts we had that a row of this batch matched
        tagged: list[tuple[_Target, list[str]]] = []
        custom: list[tuple[_Target, dict[int, Any]]] = []
        for row in rows:
            if row.odoo_partner_id is not None:
                target, conflict = _match_partner(row, by_partner, by_document, by_key)
                if conflict is not None:
                    rejected.append((row.line, *conflict))
                    continue
            else:
                target = _match(row, by_document, by_key)
            if target is None:
                repeated = self.dry_run and self._would_create(row)
                target = _Target(None, len(new), dict(_NEW_CONTACT), repeated)
                new.append(target)
                if repeated:
                    merged.append(row.line)
                else:
                    created += 1
            elif target.seen:
                merged.append(row.line)
            else:
                updated += 1
            if target.id is not None:
                matched.add(target.id)
            target.seen = True
            target.line = row.line
            if row.tags:
                tagged.append((target, row.tags))
            if row.custom:
                custom.append((target, {f: v for f, v in row.custom.items() if v is not None}))
            state = target.state
            state.update(row.values)
            if row.odoo_partner_id is not None:
                by_partner[row.odoo_partner_id] = target
            if row.document is not None:
                by_document[row.document] = target
            for key in row.keys:
                candidates = by_key.setdefault(key, [])
                if target not in candidates:
                    candidates.append(target)

        # Read before the values are written: what each contact that exists had of the fields given.
        field_changes = self._field_changes(session, custom) if custom else {}
        now = _now(session)
        # New contacts with tags or field values need their ids in order, to write those under them.
        in_order = any(target.id is None for target, _ in (*custom, *tagged))
        ids = _insert(session, [t.state for t in new], now, in_order) if new and not self.dry_run else []
        if not self.dry_run:
            if in_order:
                for target, contact_id in zip(new, ids, strict=True):
                    target.id = contact_id
            contact_tags.add(session, [(target.id, name) for target, names in tagged for name in names])
            if custom:
                by_contact: dict[int, dict[int, Any]] = {}
                for target, values in custom:  # a later row of the same contact wins
                    by_contact.setdefault(target.id, {}).update(values)
                custom_fields.write_parsed(session, by_contact, self.types)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        unchanged = 0
        for target in existing:
            if not target.seen:
                continue
            ids.append(target.id)
            changed = tuple(c for c in _STATE if target.state[c] != target.original[c])
            values_changed = field_changes.get(target.id, {})
            unchanged += not changed and not values_changed and target.id in matched
            if changed or values_changed:
                self.report.note_change(ContactChange(
                    target.line, target.id, target.original["name"],
                    {**{c: (target.original[c], target.state[c]) for c in FIELDS if c in changed}, **values_changed}))
            if changed:
                params = {f"p_{c}": target.state[c] for c in changed}
                params["p_id"] = target.id
                groups.setdefault(changed, []).append(params)
        if self.dry_run:
            return created, updated, unchanged, merged, ids, rejected
        for changed, params in groups.items():
            values = {c: bindparam(f"p_{c}") for c in changed} | {"updated_at": now}
            statement = update(_contacts).where(_contacts.c.id == bindparam("p_id")).values(values)
            session.execute(statement, params)
        return created, updated, unchanged, merged, ids, rejected

    def _field_changes(self, session: Session, custom: list[tuple[_Target, dict[int, Any]]]
                       ) -> dict[int, dict[str, tuple[str | None, str]]]:
        """{contact id: {field key: (value it has, value it gets)}} for the contacts that exist, as
        text written the Brazilian way (1.234,56; 15/11/2025; sim/não); the fields whose value stays
        are left out."""
        given: dict[int, dict[int, Any]] = {}
        for target, values in custom:  # a later row of the same contact wins
            if target.id is not None and values:
                given.setdefault(target.id, {}).update(values)
        if not given:
            return {}
        held = custom_fields.values_for(session, list(given), self.definitions.values())
        found: dict[int, dict[str, tuple[str | None, str]]] = {}
        for contact_id, values in given.items():
            for field_id, stored in values.items():
                definition = self.definitions[field_id]
                before = held.get(contact_id, {}).get(definition.key)
                after = custom_fields.typed(definition, stored)
                if before != after:
                    found.setdefault(contact_id, {})[definition.key] = (
                        None if before is None else custom_fields.as_text(definition, before),
                        custom_fields.as_text(definition, after))
        return found

    def _would_create(self, row: _Row) -> bool:
        """In a dry run: whether an earlier batch would already have created this row's contact (and
        remember this one's CPF and keys for the batches after)."""
        marks = ([f"cpf:{row.document}"] if row.document else []) + row.keys
        seen = any(mark in self.would_create for mark in marks)
        self.would_create.update(marks)
        return seen


def _now(session: Session):
    """The batch's timestamp, converted for the database once instead of once per row.

    (Rendered into the SQL text instead, each batch would have a different statement, and
    sqlite3's prepared-statement cache fills with 1000-row INSERTs: +200 MB.)
    """
    dialect = session.get_bind().dialect
    processor = UTCDateTime().bind_processor(dialect)
    value = processor(utcnow()) if processor else utcnow()
    # SQLite stores the text SQLAlchemy formats; PostgreSQL takes the aware datetime as it is.
    return bindparam("now", value, type_=String() if isinstance(value, str) else DateTime(timezone=True))


def _insert(session: Session, states: list[dict[str, Any]], now, in_order: bool = False) -> list[int]:
    """Insert new contacts with one executemany; their ids, in the order of `states` on PostgreSQL
    or with `in_order`, else in no particular order."""
    if session.get_bind().dialect.name == "postgresql":
        # Ids from the sequence first, then a plain executemany (psycopg pipelines it): three
        # times faster than INSERT ... RETURNING, whose 1000-row statements psycopg parses in Python.
        ids = session.scalars(
            sql_text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": _contacts.name, "n": len(states)},
        ).all()
        session.execute(
            _contacts.insert().values(created_at=now, updated_at=now),
            [{**state, "id": contact_id} for state, contact_id in zip(states, ids, strict=True)],
        )
        return ids
    statement = _contacts.insert().values(created_at=now, updated_at=now)
    if in_order:
        # The transaction holds SQLite's write lock from its start (BEGIN IMMEDIATE), so the ids
        # after the largest are ours, the ones SQLite would pick itself (asking RETURNING for them
        # in order, sort_by_parameter_order, makes SQLAlchemy insert one row at a time).
        first = (session.scalar(select(func.max(_contacts.c.id))) or 0) + 1
        ids = list(range(first, first + len(states)))
        session.execute(statement, [{**state, "id": contact_id} for state, contact_id in zip(states, ids)])
        return ids
    # Otherwise the ids only feed the set of contacts this import wrote, so their order does not matter.
    return list(session.scalars(statement.returning(_contacts.c.id), states))


def _match(row: _Row, by_document: dict[str, _Target], by_key: dict[str, list[_Target]]) -> _Target | None:
    if row.document is not None:
        target = by_document.get(row.document)
        if target is not None:
            return target
    if not row.keys:
        return None
    candidates: list[_Target] = []
    for key in row.keys:
        for target in by_key.get(key, ()):
            state = target.state
            if key != state["phone_key"] and key != state["mobile_key"]:
                continue  # an earlier row of the batch moved this contact to another number
            if row.document is not None and state["document"] is not None:
                continue  # another person's CPF: a shared phone does not make them the same contact
            if target not in candidates:
                candidates.append(target)
    if not candidates:
        return None
    exact = [t for t in candidates if t.state["phone_e164"] in row.e164s or t.state["mobile_e164"] in row.e164s]
    return min(exact or candidates, key=_Target.rank)


def _match_partner(row: _Row, by_partner: dict[int, _Target], by_document: dict[str, _Target],
                   by_key: dict[str, list[_Target]]) -> tuple[_Target | None, tuple[str, str] | None]:
    """A row from Odoo: the contact with its partner id, else one without a partner that has its CPF
    or phone; (target, None), or (None, (field, reason)) when writing it would take another
    partner's CPF or phone (a duplicate in Odoo: never two contacts for one customer)."""
    target = by_partner.get(row.odoo_partner_id)
    if row.document is not None:
        owner = by_document.get(row.document)
        if owner is not None and owner is not target and (target is not None or owner.state["odoo_partner_id"]):
            return None, ("vat", f"o CPF {format_cpf(row.document)} já é de {_who(owner)}")
    if target is not None:
        return target, None
    target = _match(row, by_document, by_key)
    if target is not None and target.state["odoo_partner_id"] is not None:
        return None, ("phone/mobile", f"o telefone já é de {_who(target)} (parceiro duplicado no Odoo?)")
    return target, None


def _who(target: _Target) -> str:
    contact = f"contato {target.id}" if target.id is not None else "outro contato desta sincronização"
    partner = target.state["odoo_partner_id"]
    return f"{contact}, do parceiro {partner} do Odoo" if partner else contact


def _lookup(session: Session, documents: set[str], keys: set[str], partner_ids: set[int] = frozenset()
            ) -> list[dict[str, Any]]:
    """The contacts that have one of these CPFs, phone keys or partner ids, a few IN (...) queries in all."""
    columns = [_contacts.c.id, *(_contacts.c[c] for c in _STATE)]
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted(partner_ids), LOOKUP_CHUNK):
        for row in session.execute(select(*columns).where(_contacts.c.odoo_partner_id.in_(chunk))):
            found[row.id] = dict(row._mapping)
    for chunk in chunks(sorted(documents), LOOKUP_CHUNK):
        for row in session.execute(select(*columns).where(_contacts.c.document.in_(chunk))):
            found[row.id] = dict(row._mapping)
    for chunk in chunks(sorted(keys), LOOKUP_CHUNK):
        query = select(*columns).where(or_(_contacts.c.phone_key.in_(chunk), _contacts.c.mobile_key.in_(chunk)))
        for row in session.execute(query):
            found.setdefault(row.id, dict(row._mapping))
    return [found[i] for i in sorted(found)]


class _IdSet:
    """A set of positive ids as a paged bitmap: 1M contiguous ids take ~130 KB, a set() ~60 MB."""

    __slots__ = ("pages",)
    PAGE_BITS = 15

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def add(self, value: int) -> None:
        page = self.pages.get(value >> self.PAGE_BITS)
        if page is None:
            page = self.pages[value >> self.PAGE_BITS] = bytearray(1 << (self.PAGE_BITS - 3))
        offset = value & ((1 << self.PAGE_BITS) - 1)
        page[offset >> 3] |= 1 << (offset & 7)

    def __contains__(self, value: int) -> bool:
        page = self.pages.get(value >> self.PAGE_BITS)
        if page is None:
            return False
        offset = value & ((1 << self.PAGE_BITS) - 1)
        return bool(page[offset >> 3] & (1 << (offset & 7)))


# Rows from elsewhere (the Odoo sync) go through the same checks and the same batch writer.
RowError = _RowError
BatchWriter = _BatchWriter


# --- export ------------------------------------------------------------------------------------

EXPORT_CHUNK = 2000


def export_contacts(
    session: Session, destination: str | os.PathLike[str] | IO[str], *, search: str | None = None,
    tags_: list[str] | None = None, field_filters: list | None = None,
) -> int:
    """Write contacts as CSV, in id order, a chunk at a time; returns how many were written.

    A path is written as UTF-8 with BOM (so Excel shows accents right). CPFs are written formatted
    (123.456.789-09) so that Excel keeps their leading zeros; the import reads them back as they are.
    ``search``, ``tags_`` and ``field_filters`` filter like the contact list does (name, email, CPF or
    phone; every one of these tags; the business's fields, fields.parse_filters).
    """
    if isinstance(destination, (str, os.PathLike)):
        with open(destination, "w", encoding="utf-8-sig", newline="") as out:
            written = _export(session, out, _export_filter(search, tags_, field_filters))
    else:
        written = _export(session, destination, _export_filter(search, tags_, field_filters))
    filters = {"tags": tags_, "fields": [f.field.key for f in field_filters or []]}
    record(session, action="contact.export", subject_type="contact", subject_id=None, search=search,
           **{name: value for name, value in filters.items() if value}, count=written)
    return written


def _export_filter(search: str | None, tags_: list[str] | None, field_filters: list | None):
    conditions = []
    if search and search.strip():
        conditions.append(search_filter(search.strip()))
    if tags_:
        conditions.append(contact_tags.having_all(tags_))
    if field_filters:
        matching = custom_fields.filtered(None, field_filters, contact_id=None).order_by(None)
        conditions.append(_contacts.c.id.in_(matching))
    return and_(*conditions) if conditions else None


def _export(session: Session, out: IO[str], condition) -> int:
    columns = [_contacts.c.id, *(_contacts.c[c] for c in (*CONTACT_FIELDS, "phone_e164", "mobile_e164"))]
    # The business's fields follow, headed by their keys so that the file imports back as it is.
    definitions = custom_fields.definitions(session)
    writer = csv.writer(out)
    writer.writerow((*EXPORT_HEADER, *(d.key for d in definitions)))
    written, last_id = 0, 0
    while True:
        query = select(*columns).where(_contacts.c.id > last_id).order_by(_contacts.c.id).limit(EXPORT_CHUNK)
        if condition is not None:
            query = query.where(condition)
        rows = session.execute(query).all()
        if not rows:
            return written
        tags = contact_tags.names_by_contact(session, [row.id for row in rows])
        values = custom_fields.values_for(session, [row.id for row in rows], definitions) if definitions else {}
        for row in rows:
            held = values.get(row.id, {})
            writer.writerow((
                row.name, row.phone or "", row.mobile or "", row.email or "",
                format_cpf(row.document) if row.document else "", row.notes or "",
                "true" if row.opt_out_sms else "false", "true" if row.opt_out_whatsapp else "false",
                "; ".join(tags.get(row.id, ())), row.phone_e164 or "", row.mobile_e164 or "",
                *(custom_fields.as_text(d, held.get(d.key)) for d in definitions),
            ))
        written += len(rows)
        last_id = rows[-1].id
