"""The import's dry run, its preview and its rejections file, on the real databases."""

from __future__ import annotations

import csv

from sqlalchemy import func, select

from contact_center.contacts.csv_io import import_contacts, preview_import
from contact_center.contacts.models import Contact
from contact_center.contacts.service import create_contact
from tests.contacts.test_csv_import import cpf, formatted, write


def _state(db) -> list[tuple]:
    db.expire_all()
    return [(c.id, c.name, c.mobile, c.email, c.updated_at) for c in db.scalars(select(Contact).order_by(Contact.id))]


def test_dry_run_counts_and_lists_changes_without_writing(db, session_factory, tmp_path):
    create_contact(db, {"name": "Maria Souza", "mobile": "(11) 90000-0001", "document": cpf(1)})
    create_contact(db, {"name": "Pedro Alves", "mobile": "(11) 90000-0002", "email": "pedro@exemplo.com.br"})
    db.commit()
    before = _state(db)
    text = "\n".join([
        "Nome;Celular;CPF;E-mail",
        f"Maria Souza Lima;(11) 90000-0001;{formatted(cpf(1))};",  # renamed, by CPF
        "Pedro Alves;(11) 90000-0002;;pedro@exemplo.com.br",      # matched, nothing changes
        "Cliente Novo;(21) 90000-0003;;",                         # created
        "Cliente Novo;21900000003;;novo@exemplo.com.br",          # repeats the new one
        "Sem Telefone;;;",                                        # rejected
    ])
    report = import_contacts(session_factory, write(tmp_path, text), dry_run=True, batch_size=3)
    assert _state(db) == before  # nothing written, not even updated_at
    assert (report.rows_read, report.created, report.updated, report.rejected_count) == (5, 1, 2, 1)
    assert report.merged_duplicates == [5]
    assert report.changed_count == 1 and report.changed_fields == {"name": 1}
    [change] = report.changes
    assert change.name == "Maria Souza" and change.fields == {"name": ("Maria Souza", "Maria Souza Lima")}
    assert change.line == 2

    done = import_contacts(session_factory, write(tmp_path, text), batch_size=3)
    assert (done.created, done.updated, done.rejected_count, done.merged_duplicates) == (1, 2, 1, [5])
    assert done.changes[0].fields == change.fields  # the run did what the dry run said
    db.expire_all()
    assert db.scalar(select(Contact.name).where(Contact.document == cpf(1))) == "Maria Souza Lima"


def test_preview_shows_rows_as_stored_and_detected_columns(tmp_path):
    text = "Nome Completo;Telefone Celular;CPF;Cidade\nAna Lima Conceição;(11) 90000-0001;" + formatted(cpf(2)) + ";Santos\n;;;Santos\n"
    report, rows = preview_import(write(tmp_path, text, encoding="cp1252"))
    assert report.delimiter == ";" and report.encoding == "cp1252"
    assert report.columns == {"Nome Completo": "name", "Telefone Celular": "mobile", "CPF": "document"}
    assert report.ignored_columns == ["Cidade"]
    assert rows[0].values["mobile"] == "(11) 90000-0001"
    assert rows[0].values["document"] == cpf(2) and rows[0].rejected is None
    assert rows[1].line == 3 and rows[1].rejected.field == "name" and rows[1].values == {}
    # A mapping changes what a column means; the preview follows it.
    report, rows = preview_import(write(tmp_path, text), mapping={"Cidade": "notes"})
    assert report.columns["Cidade"] == "notes" and rows[0].values["notes"] == "Santos"


def test_rejections_file_imports_again_once_fixed(db, session_factory, tmp_path):
    text = "nome,celular,cidade\nAna Lima,abc,Santos\r\nBruno Dias,(11) 90000-0005,Campinas\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert report.created == 1 and report.rejected_count == 1
    rejections = tmp_path / "rejeitadas.csv"
    report.write_rejections(rejections)
    with open(rejections, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["nome", "celular", "cidade", "linha", "campo", "motivo"]
    assert rows[1][:5] == ["Ana Lima", "abc", "Santos", "2", "celular"]
    fixed = rejections.read_text(encoding="utf-8-sig").replace(",abc,", ",(11) 90000-0004,")
    again = import_contacts(session_factory, write(tmp_path, fixed, name="corrigido.csv"))
    assert (again.created, again.rejected_count) == (1, 0)
    assert set(again.ignored_columns) == {"cidade", "linha", "campo", "motivo"}
    assert db.scalar(select(func.count()).select_from(Contact)) == 2
