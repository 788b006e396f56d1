"""The business's contact fields in CSV files (import mapping, validation per row, export) and the CLI."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from contact_center.contacts import fields
from contact_center.contacts.csv_io import ImportFileError, export_contacts, import_contacts, preview_import
from contact_center.contacts.models import Contact


@pytest.fixture
def collections_fields(db):
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    fields.add_field(db, key="vencimento", label="Vencimento", type="date")
    fields.add_field(db, key="acordo", label="Tem acordo", type="boolean")
    db.commit()


def by_name(db) -> dict[str, dict]:
    db.expire_all()
    found = {c.id: c.name for c in db.scalars(select(Contact))}
    values = fields.values_for(db, list(found))
    return {name: values.get(contact_id, {}) for contact_id, name in found.items()}


def test_columns_map_to_fields_by_map_key_or_label(db, session_factory, tmp_path, collections_fields):
    path = tmp_path / "clientes.csv"
    path.write_text("Nome;Celular;Valor;vencimento;Tem acordo\n"
                    "Ana;(11) 90000-0001;1.234,56;15/11/2025;sim\n"
                    "Bia;(11) 90000-0002;99.90;2025-12-01;não\n"
                    "Caio;(11) 90000-0003;;;\n", encoding="utf-8")
    report = import_contacts(session_factory, path, mapping={"Valor": "valor_parcela"})
    assert report.rejected_count == 0 and report.created == 3
    assert report.columns == {"Nome": "name", "Celular": "mobile", "Valor": "valor_parcela",
                              "vencimento": "vencimento", "Tem acordo": "acordo"}
    assert by_name(db) == {
        "Ana": {"valor_parcela": Decimal("1234.56"), "vencimento": date(2025, 11, 15), "acordo": True},
        "Bia": {"valor_parcela": Decimal("99.90"), "vencimento": date(2025, 12, 1), "acordo": False},
        "Caio": {},
    }
    # Importing again updates the values given; an empty cell keeps what the contact has.
    path.write_text("Nome;Celular;Valor;vencimento\nAna;(11) 90000-0001;2.000,00;\n", encoding="utf-8")
    report = import_contacts(session_factory, path, mapping={"Valor": "valor_parcela"})
    assert report.updated == 1
    assert by_name(db)["Ana"] == {"valor_parcela": Decimal("2000.00"), "vencimento": date(2025, 11, 15),
                                  "acordo": True}


def test_a_bad_value_rejects_its_row_with_the_line_and_field(db, session_factory, tmp_path, collections_fields):
    path = tmp_path / "clientes.csv"
    path.write_text("nome,celular,valor_parcela,vencimento\n"
                    "Ana,(11) 90000-0001,\"1.234,567\",15/11/2025\n"
                    "Bia,(11) 90000-0002,10,31/02/2025\n"
                    "Caio,(11) 90000-0003,\"5,00\",01/12/2025\n", encoding="utf-8")
    report = import_contacts(session_factory, path)
    assert [(r.line, r.field) for r in report.rejected] == [(2, "valor_parcela"), (3, "vencimento")]
    assert "valor_parcela: esperado um valor em reais, como 1.234,56" in report.rejected[0].reason
    assert "vencimento: esperado uma data, como 15/11/2025" in report.rejected[1].reason
    assert by_name(db) == {"Caio": {"valor_parcela": Decimal("5.00"), "vencimento": date(2025, 12, 1)}}


def test_a_map_to_an_unknown_field_lists_the_defined_ones(session_factory, tmp_path, collections_fields):
    path = tmp_path / "c.csv"
    path.write_text("nome,celular,Valor\nAna,11 90000-0001,1\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="unknown field 'valor'; the fields are .*valor_parcela, vencimento"):
        import_contacts(session_factory, path, mapping={"Valor": "valor"})


def test_values_across_batches_and_repeated_rows_land_on_the_right_contact(db, session_factory, tmp_path,
                                                                           collections_fields):
    lines = ["nome,celular,valor_parcela"] + [f"C{i},(11) 90000-{i:04d},{i},00" for i in range(1, 8)]
    lines.append("C3 again,(11) 90000-0003,\"333,00\"")
    (tmp_path / "c.csv").write_text("\n".join(lines).replace(",00", ".00") + "\n", encoding="utf-8")
    report = import_contacts(session_factory, tmp_path / "c.csv", batch_size=3)
    assert report.rejected_count == 0 and report.created == 7
    values = by_name(db)
    assert values["C3 again"] == {"valor_parcela": Decimal("333.00")}
    assert {name: v["valor_parcela"] for name, v in values.items() if name != "C3 again"} == {
        f"C{i}": Decimal(f"{i}.00") for i in (1, 2, 4, 5, 6, 7)}


def test_dry_run_and_preview_show_the_fields_and_what_changes_in_them(db, session_factory, tmp_path,
                                                                      collections_fields):
    path = tmp_path / "clientes.csv"
    path.write_text("Nome;Celular;Valor da parcela;Vencimento;Tem acordo\n"
                    "Ana;(11) 90000-0001;1.234,56;15/11/2025;sim\n"
                    "Bia;(11) 90000-0002;;;\n", encoding="utf-8")
    import_contacts(session_factory, path)
    path.write_text("Nome;Celular;Valor da parcela;Vencimento;Tem acordo\n"
                    "Ana;(11) 90000-0001;2.000,00;15/11/2025;sim\n"  # only the amount changes
                    "Bia;(11) 90000-0002;50,00;;não\n"  # two values she had not
                    "Caio;(11) 90000-0003;10,00;;\n", encoding="utf-8")  # a new contact: no change listed
    before = by_name(db)
    report = import_contacts(session_factory, path, dry_run=True, batch_size=2)
    assert by_name(db) == before
    assert (report.created, report.updated, report.unchanged) == (1, 2, 0)
    assert report.changed_count == 2 and report.changed_fields == {"valor_parcela": 2, "acordo": 1}
    assert {c.name: c.fields for c in report.changes} == {
        "Ana": {"valor_parcela": ("1.234,56", "2.000,00")},
        "Bia": {"valor_parcela": (None, "50,00"), "acordo": (None, "não")}}

    done = import_contacts(session_factory, path, batch_size=2)
    assert {c.name: c.fields for c in done.changes} == {c.name: c.fields for c in report.changes}
    assert by_name(db)["Ana"]["valor_parcela"] == Decimal("2000.00")
    again = import_contacts(session_factory, path, dry_run=True)  # the same file once more: nothing changes
    assert (again.updated, again.unchanged, again.changed_count, again.changes) == (3, 3, 0, [])

    _, rows = preview_import(path, definitions=fields.definitions(db))
    assert rows[0].values["valor_parcela"] == Decimal("2000.00") and rows[0].values["acordo"] is True
    assert rows[0].values["vencimento"] == date(2025, 11, 15) and "vencimento" not in rows[1].values


def test_export_writes_the_fields_and_imports_back(db, session_factory, tmp_path, collections_fields):
    path = tmp_path / "in.csv"
    path.write_text("nome;celular;valor_parcela;vencimento;acordo\n"
                    "Ana;(11) 90000-0001;1.234,56;15/11/2025;sim\nBia;(11) 90000-0002;;;\n", encoding="utf-8")
    import_contacts(session_factory, path)
    out = io.StringIO()
    assert export_contacts(db, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["name"], r["valor_parcela"], r["vencimento"], r["acordo"]) for r in rows] == [
        ("Ana", "1.234,56", "15/11/2025", "sim"), ("Bia", "", "", "")]
    before = by_name(db)
    for contact in db.scalars(select(Contact)):
        db.delete(contact)
    db.commit()
    (tmp_path / "out.csv").write_text(out.getvalue(), encoding="utf-8")
    assert import_contacts(session_factory, tmp_path / "out.csv").created == 2
    assert by_name(db) == before


def run_cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(data_dir), "COLUMNS": "250"}
    environment.pop("CONTACT_CENTER_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "contact_center", *args], capture_output=True, text=True,
                          env=environment, timeout=120, cwd=data_dir)


def test_cli_defines_fields_sets_filters_and_removes(tmp_path):
    added = run_cli("contacts", "fields", "add", "valor_parcela", "--label", "Valor da parcela", "--type", "money",
                    data_dir=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "contact.valor_parcela" in added.stdout
    bad = run_cli("contacts", "fields", "add", "Valor", "--label", "V", "--type", "money", data_dir=tmp_path)
    assert bad.returncode == 1 and "letras minúsculas" in bad.stderr
    run_cli("contacts", "fields", "add", "vencimento", "--label", "Vencimento", "--type", "date", data_dir=tmp_path)
    for name, phone, amount in (("Ana", "11 90000-0001", "1.500,00"), ("Bia", "11 90000-0002", "300")):
        made = run_cli("contacts", "add", name, "--mobile", phone, "--field", f"valor_parcela={amount}",
                       "--field", "vencimento=15/11/2025", data_dir=tmp_path)
        assert made.returncode == 0, made.stderr
    wrong = run_cli("contacts", "add", "Caio", "--mobile", "11 90000-0003", "--field", "vencimento=amanhã",
                    data_dir=tmp_path)
    assert wrong.returncode == 1 and "vencimento: esperado uma data, como 15/11/2025" in wrong.stderr
    listed = run_cli("contacts", "list", "--where", "valor_parcela_min=1000", "--where", "vencimento_to=30/11/2025",
                     data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Ana" in listed.stdout and "Bia" not in listed.stdout and "1.500,00" in listed.stdout
    shown = run_cli("contacts", "fields", "list", data_dir=tmp_path)
    assert "valor_parcela" in shown.stdout and "Valor da parcela" in shown.stdout
    asked = run_cli("contacts", "fields", "remove", "valor_parcela", data_dir=tmp_path)
    assert asked.returncode == 1 and "2 contact(s) hold a value of valor_parcela" in asked.stdout
    removed = run_cli("contacts", "fields", "remove", "valor_parcela", "--yes", data_dir=tmp_path)
    assert removed.returncode == 0 and "2 value(s)" in removed.stdout
    assert "valor_parcela" not in run_cli("contacts", "fields", "list", data_dir=tmp_path).stdout
