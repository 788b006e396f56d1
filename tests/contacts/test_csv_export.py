"""Contact export to CSV, and the round trip back through the import."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

from sqlalchemy import delete, select

from contact_center.contacts import csv_io
from contact_center.contacts.csv_io import EXPORT_HEADER, export_contacts, import_contacts
from contact_center.contacts.models import Contact
from contact_center.contacts.service import create_contact

COMPARED = ("name", "phone", "phone_e164", "phone_key", "mobile", "mobile_e164", "mobile_key",
            "email", "document", "notes", "opt_out_sms", "opt_out_whatsapp")


def cpf(n: int) -> str:
    """A fictitious CPF with valid check digits, built from n."""
    digits = [int(d) for d in f"{(n * 7907 + 100_000_001) % 1_000_000_000:09d}"]
    for position in (9, 10):
        digits.append(sum(d * w for d, w in zip(digits, range(position + 1, 1, -1))) * 10 % 11 % 10)
    return "".join(map(str, digits))


def snapshot(db) -> list[tuple]:
    db.expire_all()
    return [tuple(getattr(c, f) for f in COMPARED) for c in db.scalars(select(Contact).order_by(Contact.id))]


def read(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def make_contacts(db) -> None:
    create_contact(db, {"name": "João da Conceição", "mobile": "(11) 98765-4321", "document": cpf(1),
                        "email": "joao@exemplo.com.br", "notes": "prefere WhatsApp; à tarde, \"urgente\"\nsegunda linha"})
    create_contact(db, {"name": "Cliente 2", "phone": "(21) 3456-7890", "mobile": "552199876543",
                        "opt_out_sms": True})
    create_contact(db, {"name": "Cliente 3", "phone": "+55 31 3222-1100", "opt_out_whatsapp": True})
    create_contact(db, {"name": "Cliente 4", "document": "012.345.678-90"})  # CPF with a leading zero
    db.commit()


def test_export_writes_every_contact_with_the_header(db, tmp_path):
    make_contacts(db)
    path = tmp_path / "contatos.csv"
    assert export_contacts(db, path) == 4
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM, for Excel
    rows = read(path)
    assert list(rows[0]) == list(EXPORT_HEADER)
    assert rows[0]["name"] == "João da Conceição"
    assert rows[0]["document"] == f"{cpf(1)[:3]}.{cpf(1)[3:6]}.{cpf(1)[6:9]}-{cpf(1)[9:]}"
    assert rows[0]["notes"].endswith("\nsegunda linha")
    assert (rows[1]["phone_e164"], rows[1]["mobile"], rows[1]["mobile_e164"]) == (
        "+552134567890", "552199876543", "+552199876543")
    assert (rows[1]["opt_out_sms"], rows[1]["opt_out_whatsapp"]) == ("true", "false")
    assert rows[3]["document"] == "012.345.678-90"


def test_round_trip_into_an_empty_database(db, session_factory, tmp_path):
    make_contacts(db)
    before = snapshot(db)
    path = tmp_path / "contatos.csv"
    export_contacts(db, path)
    db.execute(delete(Contact))
    db.commit()

    report = import_contacts(session_factory, path)
    assert (report.rows_read, report.created, report.rejected_count) == (4, 4, 0)
    assert report.ignored_columns == ["phone_e164", "mobile_e164"]
    assert snapshot(db) == before


def test_export_is_chunked_in_id_order(db, monkeypatch):
    monkeypatch.setattr(csv_io, "EXPORT_CHUNK", 3)
    for i in range(10):
        create_contact(db, {"name": f"Cliente {i}", "mobile": f"11 98765-{i:04d}"})
    db.commit()
    out = io.StringIO()
    assert export_contacts(db, out) == 10
    names = [row["name"] for row in csv.DictReader(io.StringIO(out.getvalue()))]
    assert names == [f"Cliente {i}" for i in range(10)]


def test_export_with_search(db):
    make_contacts(db)
    out = io.StringIO()
    assert export_contacts(db, out, search="+55 21 3456-7890") == 1  # any written form of the phone
    assert "Cliente 2" in out.getvalue()
    out = io.StringIO()
    assert export_contacts(db, out, search="cliente") == 3
    out = io.StringIO()
    assert export_contacts(db, out, search="ninguém") == 0
    assert out.getvalue().strip() == ",".join(EXPORT_HEADER)


def run_cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    environment.pop("CONTACT_CENTER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "contact_center", *args],
        capture_output=True, text=True, env=environment, timeout=120, cwd=data_dir,
    )


def test_cli_export_then_import_elsewhere(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    source = first / "in.csv"
    source.write_text(
        f"nome;celular;cpf\nJoão;11 98765-0001;{cpf(1)}\nCliente 2;(21) 99876-0002;\n", encoding="utf-8"
    )
    assert run_cli("contacts", "import", str(source), data_dir=first).returncode == 0

    exported = first / "out.csv"
    result = run_cli("contacts", "export", str(exported), data_dir=first)
    assert result.returncode == 0, result.stderr
    assert "Exported 2 contact(s)" in result.stdout
    assert [row["name"] for row in read(exported)] == ["João", "Cliente 2"]

    only = first / "only.csv"
    assert run_cli("contacts", "export", str(only), "--search", "João", data_dir=first).returncode == 0
    assert [row["name"] for row in read(only)] == ["João"]

    imported = run_cli("contacts", "import", str(exported), data_dir=second)
    assert imported.returncode == 0, imported.stderr
    listed = run_cli("contacts", "list", data_dir=second)
    assert "João" in listed.stdout and "+5521998760002" in listed.stdout

    bad = run_cli("contacts", "export", str(tmp_path / "missing-dir" / "x.csv"), data_dir=first)
    assert bad.returncode == 1 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr
