"""CSV imports from the contacts page: upload, mapping, dry run, import, rejections file.

The one writer of `contact_imports`. A file is kept under the data directory (imports/<id>.csv)
from upload until it is deleted with its record; the dry run and the import are jobs that run
csv_io.import_contacts on it (the dry run with dry_run=True: the same path, writing nothing),
storing their progress on the row as they go, so the page can be left and reopened. The
rejections file (imports/<id>.rejected.csv) is written by each run: every rejected row as it
was, plus its line, field and reason.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from contact_center.audit.service import record
from contact_center.contacts import csv_io
from contact_center.contacts import fields as custom_fields
from contact_center.contacts.csv_io import FIELD_LABELS, ImportFileError, ImportReport, PreviewRow
from contact_center.contacts.models import ContactImport
from contact_center.db import transaction, utcnow
from contact_center.translations import Words
from contact_center.errors import Conflict, InvalidInput, NotFound
from contact_center.settings import Settings
from contact_center.unit_of_work import after_commit

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
IGNORE = "-"
RUNNING = ("checking", "importing")
# A run whose row has not moved for this long lost its worker (a restart): it may be started again.
STALLED_AFTER = timedelta(minutes=10)
# What a summary keeps for the page: the first changed contacts and rejected rows (all are counted,
# and every rejected row is in the rejections file).
SUMMARY_CHANGES = 200
SUMMARY_REJECTIONS = 50
SNIFF = 8192
# Files that are certainly not CSV, by their first bytes.
_NOT_CSV = ((b"PK\x03\x04", Words("uma planilha do Excel (.xlsx) ou outro arquivo compactado")),
            (b"\xd0\xcf\x11\xe0", Words("uma planilha do Excel antiga (.xls)")),
            (b"%PDF", Words("um PDF")))


def _folder(settings: Settings) -> Path:
    folder = settings.data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def file_path(settings: Settings, contact_import: ContactImport) -> Path:
    return _folder(settings) / f"{contact_import.id}.csv"


def rejections_path(settings: Settings, contact_import: ContactImport) -> Path:
    return _folder(settings) / f"{contact_import.id}.rejected.csv"


def get_import(session: Session, import_id: int) -> ContactImport:
    found = session.get(ContactImport, import_id)
    if found is None:
        raise NotFound("não há importação com o número {import_id}", import_id=import_id)
    return found


# --- upload and mapping ---------------------------------------------------------------------------

def save_upload(session: Session, settings: Settings, *, user_id: int | None, filename: str,
                stream: IO[bytes]) -> ContactImport:
    """Keep an uploaded file and record it, with the columns detected in its header. Refused with a
    clear error (and nothing kept) when it is too large, empty, not a CSV file or has no usable
    columns. Flushes; the caller commits."""
    shown = (os.path.basename(filename or "") or "arquivo.csv")[:200]
    if not shown.lower().endswith((".csv", ".txt")):
        raise InvalidInput("«{shown}» não é um arquivo CSV: salve a planilha como CSV (separado por vírgula ou ponto "
                           "e vírgula) e envie o arquivo .csv", shown=shown, field="file")
    limit = settings.contact_import_max_bytes
    handle = tempfile.NamedTemporaryFile(dir=_folder(settings), suffix=".upload", delete=False)
    try:
        with handle:
            size = _copy(stream, handle, limit, shown)
        with open(handle.name, "rb") as kept:
            _check_looks_like_csv(kept.read(SNIFF), shown, size)
        report, _ = _preview(handle.name, shown, mapping=None, delimiter=None,
                             definitions=custom_fields.definitions(session))
        contact_import = ContactImport(created_by=user_id, filename=shown, size_bytes=size, status="uploaded",
                                       mapping=_full_mapping(report), delimiter=report.delimiter, rows_done=0)
        session.add(contact_import)
        session.flush()
        os.replace(handle.name, file_path(settings, contact_import))
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    record(session, action="contacts.import_uploaded", subject_type="contact_import",
           subject_id=contact_import.id, actor_id=user_id, via="ui", filename=shown, size_bytes=size)
    log.info("contact import %d: %r uploaded (%d bytes, %s, delimiter %r)", contact_import.id, shown, size,
             report.encoding, report.delimiter)
    return contact_import


def _copy(stream: IO[bytes], out: IO[bytes], limit: int, shown: str) -> int:
    size = 0
    while chunk := stream.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise InvalidInput("«{shown}» tem mais de {limit}, o limite para importar: divida o arquivo em partes "
                               "menores", field="file", shown=shown, limit=size_words(limit))
        out.write(chunk)
    if size == 0:
        raise InvalidInput("«{shown}» está vazio: envie um CSV com o cabeçalho e uma linha por contato",
                           shown=shown, field="file")
    return size


def size_words(size: int) -> str:
    """1 KB, 200 MB: the limit as an operator reads it."""
    if size < 2**20:
        return f"{size // 1024} KB"
    return f"{size // 2**20:,} MB".replace(",", ".")


def _check_looks_like_csv(head: bytes, shown: str, size: int) -> None:
    for magic, what in _NOT_CSV:
        if head.startswith(magic):
            raise InvalidInput("«{shown}» é {what}, não um CSV: abra-o na planilha e salve como CSV",
                               shown=shown, what=what, field="file")
    if b"\x00" in head:
        raise InvalidInput("«{shown}» não é um arquivo de texto CSV (tem bytes nulos): salve a planilha como CSV",
                           shown=shown,
                           field="file")


def _preview(path, shown: str, *, mapping, delimiter, definitions=()) -> tuple[ImportReport, list[PreviewRow]]:
    try:
        return csv_io.preview_import(path, mapping=mapping, delimiter=delimiter, rows=PREVIEW_ROWS,
                                     definitions=definitions)
    except ImportFileError as exc:
        raise InvalidInput(_file_problem(exc, shown), field="file") from None


def _file_problem(exc: ImportFileError, shown: str) -> str:
    if exc.field == "columns":
        return (f"«{shown}» não tem as colunas necessárias: é preciso uma coluna de nome (nome, name) e ao menos uma "
                "de telefone (telefone, fone), celular (celular, whatsapp) ou CPF (cpf, documento)")
    if "empty" in exc.message:
        return f"«{shown}» está vazio: a primeira linha deve ser o cabeçalho com os nomes das colunas"
    return f"«{shown}» não pôde ser lido como CSV ({exc.message})"


def _full_mapping(report: ImportReport) -> dict[str, str]:
    """Every column of the header -> the field it is read into, or "-" (ignored)."""
    return {header: report.columns.get(header, IGNORE) for header in report.header if header.strip()}


def preview(settings: Settings, contact_import: ContactImport, definitions=()) -> tuple[ImportReport, list[PreviewRow]]:
    """The file's first rows as its mapping would store them (the business's fields: `definitions`)."""
    return _preview(file_path(settings, contact_import), contact_import.filename,
                    mapping=contact_import.mapping, delimiter=contact_import.delimiter, definitions=definitions)


def check_mapping(header: list[str], mapping: dict[str, str], definitions=()) -> dict[str, str]:
    """The mapping, cleaned; InvalidInput (in Portuguese, naming the column) when it cannot import.
    A column may go to a built-in field or to one of the business's fields (by its key)."""
    labels = {**FIELD_LABELS, **{d.key: d.label for d in definitions}}
    known = {h for h in header if h.strip()}
    cleaned: dict[str, str] = {}
    taken: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in known:
            raise InvalidInput("o arquivo não tem a coluna «{column}»", column=column, field=f"mapping.{column}")
        target = (target or IGNORE).strip()
        if target != IGNORE and target not in labels:
            raise InvalidInput("coluna «{column}»: «{target}» não é um campo de contato",
                               column=column, target=target, field=f"mapping.{column}")
        if target != IGNORE and target in taken:
            raise InvalidInput("as colunas «{first}» e «{column}» estão ambas ligadas a {label}: escolha uma e "
                               "ignore a outra", field=f"mapping.{column}", first=taken[target], column=column,
                               label=labels[target])
        if target != IGNORE:
            taken[target] = column
        cleaned[column] = target
    for column in known - cleaned.keys():
        cleaned[column] = IGNORE  # a column the form did not mention is ignored, not guessed
    if "name" not in taken:
        raise InvalidInput("ligue uma coluna ao nome do contato", field="mapping")
    if not {"phone", "mobile", "document"} & taken.keys():
        raise InvalidInput("ligue ao menos uma coluna a telefone, celular ou CPF: sem eles o contato não pode ser "
                           "alcançado nem encontrado numa próxima importação", field="mapping")
    return cleaned


def set_mapping(session: Session, settings: Settings, contact_import: ContactImport, mapping: dict[str, str],
                *, actor_id: int | None) -> None:
    """Change which column goes to which field: the dry run must then be run again."""
    _require(contact_import, ("uploaded", "checked", "failed"), ACTION_WORDS["map"])
    definitions = custom_fields.definitions(session)
    report, _ = preview(settings, contact_import, definitions)
    contact_import.mapping = check_mapping(report.header, mapping, definitions)
    contact_import.status = "uploaded"
    contact_import.dry_run = None
    contact_import.error = None
    session.flush()
    log.info("contact import %d: mapping changed by user %s", contact_import.id, actor_id)


def _require(contact_import: ContactImport, statuses: tuple[str, ...], action: Words) -> None:
    if contact_import.status not in statuses:
        raise Conflict("a importação {id} está {status}: não é possível {action} agora", field="status",
                       id=contact_import.id, status=STATUS_WORDS[contact_import.status], action=action)


STATUS_WORDS = {"uploaded": Words("aguardando a simulação"), "checking": Words("em simulação"),
                "checked": Words("simulada"), "importing": Words("importando"), "done": Words("concluída"),
                "failed": Words("com erro")}
# What a refused action would have done, as the refusal says it.
ACTION_WORDS = {"map": Words("mudar as colunas"), "dry_run": Words("simular"), "import": Words("importar")}


# --- runs -------------------------------------------------------------------------------------------

def start(session: Session, contact_import: ContactImport, *, dry_run: bool, actor_id: int | None,
          enqueue: Callable[[int, bool], None]) -> None:
    """Claim the import for a run (the dry run from uploaded, checked or failed; the import only once the
    dry run is done) and enqueue it after commit. A run whose worker stopped may be started again."""
    allowed = ("uploaded", "checked", "failed") if dry_run else ("checked",)
    stalled = utcnow() - STALLED_AFTER
    claimed = session.execute(
        update(ContactImport)
        .where(ContactImport.id == contact_import.id,
               or_(ContactImport.status.in_(allowed),
                   (ContactImport.status == ("checking" if dry_run else "importing"))
                   & (ContactImport.updated_at < stalled)))
        .values(status="checking" if dry_run else "importing", rows_done=0, error=None, updated_at=utcnow(),
                finished_at=None)
    ).rowcount
    if not claimed:
        session.refresh(contact_import)
        _require(contact_import, allowed, ACTION_WORDS["dry_run" if dry_run else "import"])
    session.refresh(contact_import)
    record(session, action="contacts.import_dry_run" if dry_run else "contacts.import_started",
           subject_type="contact_import", subject_id=contact_import.id, actor_id=actor_id, via="ui",
           filename=contact_import.filename)
    import_id = contact_import.id
    after_commit(session, lambda: enqueue(import_id, dry_run))


def stalled(contact_import: ContactImport) -> bool:
    return contact_import.status in RUNNING and contact_import.updated_at < utcnow() - STALLED_AFTER


def run(session_factory: sessionmaker[Session], settings: Settings, import_id: int, dry_run: bool) -> None:
    """The job: the dry run or the import of one uploaded file, its progress stored as it goes.
    Commits as it goes (a transaction per progress step, one for the outcome)."""
    expected = "checking" if dry_run else "importing"
    with transaction(session_factory) as session:
        contact_import = session.get(ContactImport, import_id)
        if contact_import is None or contact_import.status != expected:
            log.info("contact import %d: nothing to run (%s)", import_id,
                     contact_import.status if contact_import else "deleted")
            return
        path, mapping, delimiter = file_path(settings, contact_import), dict(contact_import.mapping), contact_import.delimiter
        filename = contact_import.filename

    def progress(rows: int) -> None:
        with transaction(session_factory) as session:
            session.execute(update(ContactImport).where(ContactImport.id == import_id)
                            .values(rows_done=rows, updated_at=utcnow()))

    try:
        report = csv_io.import_contacts(session_factory, path, mapping=mapping, delimiter=delimiter,
                                        progress=progress, dry_run=dry_run)
        report.write_rejections(rejections_path(settings, contact_import))
    except Exception as exc:
        problem = _file_problem(exc, filename) if isinstance(exc, ImportFileError) else (
            "a importação parou por um erro interno; as linhas já gravadas ficam, e importar o mesmo arquivo de novo "
            "é seguro (atualiza o que já existe)")
        log.exception("contact import %d (%s) failed", import_id, "dry run" if dry_run else "import")
        with transaction(session_factory) as session:
            session.execute(update(ContactImport).where(ContactImport.id == import_id)
                            .values(status="failed", error=problem, updated_at=utcnow(), finished_at=utcnow()))
        return
    outcome = summary(report)
    with transaction(session_factory) as session:
        values = {"status": "checked" if dry_run else "done", "rows_done": report.rows_read,
                  "rows_total": report.rows_read, "updated_at": utcnow(), "finished_at": utcnow(),
                  "dry_run" if dry_run else "result": outcome}
        session.execute(update(ContactImport).where(ContactImport.id == import_id).values(values))
    log.info("contact import %d %s: %d rows, %d %s, %d updated (%d with changes), %d duplicates, %d rejected in %.1f s",
             import_id, "dry run" if dry_run else "done", report.rows_read, report.created,
             "to create" if dry_run else "created", report.updated, report.changed_count,
             len(report.merged_duplicates), report.rejected_count, report.elapsed)


def summary(report: ImportReport) -> dict:
    """What the page shows of a run (JSON for the row)."""
    return {
        "rows_read": report.rows_read, "created": report.created, "updated": report.updated,
        "merged": len(report.merged_duplicates), "rejected": report.rejected_count,
        "changed": report.changed_count, "changed_fields": report.changed_fields,
        "changes": [{"line": c.line, "contact_id": c.contact_id, "name": c.name,
                     "fields": {name: list(values) for name, values in c.fields.items()}}
                    for c in report.changes[:SUMMARY_CHANGES]],
        "rejections": [{"line": r.line, "field": FIELD_LABELS.get(r.field, r.field),
                        "reason": csv_io.rejection_reason(r.field, r.reason)}
                       for r in report.rejected[:SUMMARY_REJECTIONS]],
        "encoding": report.encoding, "delimiter": report.delimiter, "seconds": round(report.elapsed, 1),
    }
