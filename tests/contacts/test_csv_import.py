"""Contact import from CSV: real files in tmp_path, the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from contact_center.contacts import csv_io
from contact_center.contacts.csv_io import ImportFileError, RejectedRow, clean_email, import_contacts
from contact_center.contacts.models import Contact
from contact_center.contacts.service import create_contact

HEADER = "name,phone,mobile,email,document,notes,opt_out_sms,opt_out_whatsapp"


def cpf(n: int) -> str:
    """A fictitious CPF with valid check digits, built from n."""
    digits = [int(d) for d in f"{(n * 7907 + 100_000_001) % 1_000_000_000:09d}"]
    for position in (9, 10):
        digits.append(sum(d * w for d, w in zip(digits, range(position + 1, 1, -1))) * 10 % 11 % 10)
    return "".join(map(str, digits))


def formatted(document: str) -> str:
    return f"{document[:3]}.{document[3:6]}.{document[6:9]}-{document[9:]}"


def write(tmp_path, text: str, *, encoding: str = "utf-8", name: str = "contatos.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def contacts(db) -> list[Contact]:
    db.expire_all()
    return list(db.scalars(select(Contact).order_by(Contact.id)))


def count(db) -> int:
    return db.scalar(select(func.count()).select_from(Contact))


# --- good files ------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_good_file_creates_every_contact(db, session_factory, tmp_path, delimiter):
    rows = [
        HEADER.split(","),
        ["Cliente 1", "(11) 3456-7890", "(11) 98765-4321", "cliente1@exemplo.com.br", formatted(cpf(1)), "VIP; paga em dia, sempre", "sim", "não"],
        ["Cliente 2", "", "+55 21 99876-5432", "", cpf(2), "", "", "x"],
        ["Cliente 3", "0XX31 3222-1100", "", "Cliente3@Exemplo.COM", "", "", "no", "false"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    report = import_contacts(session_factory, write(tmp_path, buffer.getvalue()))

    assert report.delimiter == delimiter
    assert report.encoding == "utf-8"
    assert (report.rows_read, report.created, report.updated, report.rejected_count) == (3, 3, 0, 0)
    assert report.merged_duplicates == [] and report.ignored_columns == []
    one, two, three = contacts(db)
    assert (one.name, one.phone, one.phone_e164, one.mobile_e164) == (
        "Cliente 1", "(11) 3456-7890", "+551134567890", "+5511987654321")
    assert one.document == cpf(1) and one.email == "cliente1@exemplo.com.br"
    assert one.notes == "VIP; paga em dia, sempre"
    assert (one.opt_out_sms, one.opt_out_whatsapp) == (True, False)
    assert (two.mobile_key, two.document, two.email, two.opt_out_sms, two.opt_out_whatsapp) == (
        "+5521998765432", cpf(2), None, False, True)
    assert (three.phone_e164, three.email) == ("+553132221100", "Cliente3@exemplo.com")  # as the API stores it


def test_utf8_with_bom(db, session_factory, tmp_path):
    path = write(tmp_path, "Nome;Celular;CPF\r\nJoão Conceição;11 98765-4321;" + cpf(3) + "\r\n", encoding="utf-8-sig")
    report = import_contacts(session_factory, path)
    assert report.encoding == "utf-8-sig"
    assert report.columns == {"Nome": "name", "Celular": "mobile", "CPF": "document"}  # no BOM in 'Nome'
    assert [c.name for c in contacts(db)] == ["João Conceição"]


def test_excel_cp1252_file(db, session_factory, tmp_path):
    text = "Nome;Celular;Observações\r\nJoão da Conceição;(11) 98765-4321;“ótimo” cliente – ação\r\n"
    report = import_contacts(session_factory, write(tmp_path, text, encoding="cp1252"))
    assert report.encoding == "cp1252"
    [contact] = contacts(db)
    assert contact.name == "João da Conceição"
    assert contact.notes == "“ótimo” cliente – ação"


def test_neither_utf8_nor_cp1252_falls_back_to_latin1(db, session_factory, tmp_path):
    raw = "Nome;Celular\r\nJos\xe9 \x81;11 98765-4321\r\n".encode("latin-1")  # 0x81 is undefined in cp1252
    path = tmp_path / "latin1.csv"
    path.write_bytes(raw)
    report = import_contacts(session_factory, path)
    assert report.encoding == "latin-1"
    assert contacts(db)[0].name == "José \x81"


def test_text_and_binary_streams(db, session_factory):
    report = import_contacts(session_factory, io.StringIO("\ufeffnome,celular\nCliente 1,11 98765-4321\n"))
    assert report.created == 1 and report.columns == {"nome": "name", "celular": "mobile"}
    upload = io.BytesIO("nome;celular\nJoão;11 98765-1111\n".encode("cp1252"))
    report = import_contacts(session_factory, upload)
    assert (report.created, report.encoding) == (1, "cp1252")
    assert not upload.closed  # the caller's stream stays theirs
    assert [c.name for c in contacts(db)] == ["Cliente 1", "João"]


def test_progress_is_reported_after_each_batch(session_factory, tmp_path):
    lines = [HEADER] + [f"Cliente {i},,11 9{i:04d}-0000,,,,," for i in range(1000, 1025)]
    seen: list[int] = []
    report = import_contacts(session_factory, write(tmp_path, "\n".join(lines)), progress=seen.append, batch_size=10)
    assert report.created == 25
    assert seen == [10, 20, 25]


# --- bad rows --------------------------------------------------------------------------------


def test_bad_rows_are_reported_with_their_line_and_change_nothing(db, session_factory, tmp_path):
    text = "\n".join([
        HEADER,                                                      # line 1
        "Cliente 1,,11 98765-4321,,,,,",                              # 2 good
        "Cliente 2,,11 9876,,,,,",                                    # 3 bad phone
        f"Cliente 3,,11 98765-0003,,{cpf(3)[:-1]}0,,,",              # 4 bad CPF (check digit)
        ",,11 98765-0004,,,,,",                                       # 5 missing name
        "Cliente 5,,11 98765-0005,cliente5@,,,,",                     # 6 bad email
        "Cliente 6,,11 98765-0006,,,,talvez,",                        # 7 bad boolean
        "Cliente 7,(11) 3456-0007,,,,,,",                             # 8 good
        "Cliente 8,,,,,,,",                                           # 9 nothing to reach or match
    ]) + "\n"
    report = import_contacts(session_factory, write(tmp_path, text))

    assert (report.rows_read, report.created, report.rejected_count) == (8, 2, 6)
    assert [(r.line, r.field) for r in report.rejected] == [
        (3, "mobile"), (4, "document"), (5, "name"), (6, "email"), (7, "opt_out_sms"), (9, "phone/mobile/document"),
    ]
    reasons = {r.line: r.reason for r in report.rejected}
    assert "'11 9876'" in reasons[3] and "too short" in reasons[3]
    assert "check digit" in reasons[4]
    assert reasons[5] == "name must not be empty"
    assert "cliente5@" in reasons[6]
    assert "'talvez'" in reasons[7]
    assert [c.name for c in contacts(db)] == ["Cliente 1", "Cliente 7"]


def test_bad_row_leaves_an_existing_contact_untouched(db, session_factory, tmp_path):
    existing = create_contact(db, {"name": "Cliente 1", "mobile": "11 98765-4321", "document": cpf(1)})
    db.commit()
    text = f"nome,celular,cpf\nCliente 1 Novo,11 9876-43210x,{cpf(1)}\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert report.rejected == [RejectedRow(2, "mobile", report.rejected[0].reason)]
    [contact] = contacts(db)
    assert (contact.id, contact.name, contact.mobile) == (existing.id, "Cliente 1", "11 98765-4321")


def test_too_many_fields_is_rejected(db, session_factory, tmp_path):
    text = "nome,celular\nSilva, Ana,11 98765-4321\nCliente 2,11 98765-0002,\n"  # a trailing empty cell is fine
    report = import_contacts(session_factory, write(tmp_path, text))
    assert [(r.line, r.field) for r in report.rejected] == [(2, "row")]
    assert "3 fields" in report.rejected[0].reason
    assert [c.name for c in contacts(db)] == ["Cliente 2"]


def test_quoted_newlines_keep_line_numbers_right(db, session_factory, tmp_path):
    text = (
        "nome;celular;obs\r\n"                                   # 1
        'Cliente 1;11 98765-0001;"primeira linha\r\nsegunda"\r\n'  # 2-3
        'Cliente 2;11 9876;"nota\nem\ntrês linhas"\r\n'            # 4-6, bad phone: reported at 4
        "\r\n"                                                    # 7 blank
        ";;\r\n"                                                  # 8 an Excel row of empty cells
        "Cliente 3;abc;\r\n"                                      # 9 bad phone
    )
    report = import_contacts(session_factory, write(tmp_path, text))
    assert [r.line for r in report.rejected] == [4, 9]
    assert report.rows_read == 3
    [contact] = contacts(db)
    assert contact.notes == "primeira linha\r\nsegunda"


def test_rejections_beyond_the_memory_cap_are_still_written(session_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(csv_io, "MAX_REJECTIONS_IN_MEMORY", 3)
    lines = ["nome,celular"] + [f"Cliente {i},abc{i}" for i in range(10)]
    report = import_contacts(session_factory, write(tmp_path, "\n".join(lines)))
    assert report.rejected_count == 10 and len(report.rejected) == 3
    out = tmp_path / "rejected.csv"
    assert report.write_rejections(out) == 10
    with open(out, newline="", encoding="utf-8-sig") as handle:
        written = list(csv.DictReader(handle))
    assert [int(r["linha"]) for r in written] == list(range(2, 12))
    assert all(r["campo"] == "celular" for r in written)
    assert all(r["motivo"].startswith("celular inválido") and "abc" in r["motivo"] for r in written)
    assert [r["celular"] for r in written] == [f"abc{i}" for i in range(10)]


# --- update or create --------------------------------------------------------------------------


def test_duplicate_rows_in_the_file_are_merged_last_wins(db, session_factory, tmp_path):
    text = "\n".join([
        "nome,celular,cpf,email",
        f"Cliente 1,11 98765-0001,{cpf(1)},",                            # 2 creates
        "Cliente 2,(21) 99876-0002,,cliente2@exemplo.com",               # 3 creates
        f"Cliente 1 Atualizado,,{formatted(cpf(1))},cliente1@exemplo.com",  # 4 same CPF as line 2
        "Cliente 2 B,21 9987,,",                                          # 5 bad: reported, not merged
        "Cliente 2 C,+55 21 9 9876-0002,,",                              # 6 same phone as line 3
    ])
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated, report.merged_duplicates) == (2, 0, [4, 6])
    one, two = contacts(db)
    assert (one.name, one.email, one.mobile) == ("Cliente 1 Atualizado", "cliente1@exemplo.com", "11 98765-0001")
    assert (two.name, two.email, two.mobile) == ("Cliente 2 C", "cliente2@exemplo.com", "+55 21 9 9876-0002")


def test_duplicates_are_merged_across_batches(db, session_factory, tmp_path):
    create_contact(db, {"name": "Já existia", "mobile": "11 98765-0009"})
    db.commit()
    text = "\n".join([
        "nome,celular,cpf",
        f"Cliente 1,11 98765-0001,{cpf(1)}",   # 2 batch 1
        "Cliente 9,11 98765-0009,",            # 3 batch 1: updates the existing contact
        "Cliente 3,11 98765-0003,",            # 4 batch 2
        f"Cliente 1 B,,{cpf(1)}",              # 5 batch 2: same CPF as line 2
        "Cliente 9 B,1198765-0009,",           # 6 batch 3: same phone as line 3
        "Cliente 3 B,5511987650003,",          # 7 batch 3: same phone as line 4
    ])
    report = import_contacts(session_factory, write(tmp_path, text), batch_size=2)
    assert (report.created, report.updated, report.merged_duplicates) == (2, 1, [5, 6, 7])
    assert [c.name for c in contacts(db)] == ["Cliente 9 B", "Cliente 1 B", "Cliente 3 B"]


def test_update_by_document_writes_only_the_columns_in_the_file(db, session_factory, tmp_path):
    existing = create_contact(db, {
        "name": "Cliente 1", "mobile": "11 98765-0001", "email": "antigo@exemplo.com",
        "document": cpf(1), "notes": "cliente antigo",
    })
    db.commit()
    # email is in the file but empty: kept. notes is not in the file: kept.
    text = f"nome;cpf;telefone;email;nao enviar sms\nCliente Um;{formatted(cpf(1))};(11) 3456-0001;;sim\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated) == (0, 1)
    [contact] = contacts(db)
    assert contact.id == existing.id
    assert (contact.name, contact.phone_e164, contact.mobile) == ("Cliente Um", "+551134560001", "11 98765-0001")
    assert (contact.email, contact.notes, contact.opt_out_sms) == ("antigo@exemplo.com", "cliente antigo", True)
    assert contact.updated_at >= contact.created_at


def test_update_by_phone_ninth_digit_variant_but_never_a_landline(db, session_factory, tmp_path):
    mobile = create_contact(db, {"name": "Cliente Celular", "mobile": "(48) 99191-0234"})
    landline = create_contact(db, {"name": "Cliente Fixo", "phone": "(48) 3333-4444"})
    db.commit()
    text = "nome,whatsapp\nCliente Celular Novo,554891910234\nCliente Novo,(48) 93333-4444\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated) == (1, 1)
    first, second, third = contacts(db)
    assert (first.id, first.name, first.mobile_e164) == (mobile.id, "Cliente Celular Novo", "+554891910234")
    assert (second.id, second.name) == (landline.id, "Cliente Fixo")
    assert (third.name, third.mobile_key) == ("Cliente Novo", "+5548933334444")


def test_exact_form_wins_over_ninth_digit_variant(db, session_factory, tmp_path):
    old = create_contact(db, {"name": "Forma antiga", "mobile": "554891910234"})
    new = create_contact(db, {"name": "Forma nova", "mobile": "5548991910234"})
    db.commit()
    text = "nome,celular\nForma nova B,+55 48 99191-0234\nForma antiga B,55 48 9191-0234\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated) == (0, 2)
    assert {c.id: c.name for c in contacts(db)} == {old.id: "Forma antiga B", new.id: "Forma nova B"}


def test_a_shared_phone_does_not_merge_two_cpfs(db, session_factory, tmp_path):
    mother = create_contact(db, {"name": "Cliente Mãe", "mobile": "11 98765-1000", "document": cpf(10)})
    db.commit()
    text = f"nome,celular,cpf\nCliente Filha,11 98765-1000,{cpf(11)}\nCliente Mãe B,11 98765-1000,\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated, report.merged_duplicates) == (1, 1, [])
    by_document = {c.document: c for c in contacts(db)}
    assert by_document[cpf(10)].id == mother.id and by_document[cpf(10)].name == "Cliente Mãe B"
    assert by_document[cpf(11)].name == "Cliente Filha"


def test_a_phone_match_without_cpf_takes_the_row_cpf(db, session_factory, tmp_path):
    existing = create_contact(db, {"name": "Cliente 1", "mobile": "11 98765-0001"})
    db.commit()
    text = f"nome,celular,cpf\nCliente 1,11 98765-0001,{cpf(1)}\nCliente 1 B,,{cpf(1)}\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert (report.created, report.updated, report.merged_duplicates) == (0, 1, [3])
    [contact] = contacts(db)
    assert (contact.id, contact.document, contact.name) == (existing.id, cpf(1), "Cliente 1 B")


def test_a_batch_that_loses_a_race_on_the_cpf_is_looked_up_again(db, session_factory, tmp_path, monkeypatch):
    existing = create_contact(db, {"name": "Cliente 1", "document": cpf(1)})
    db.commit()
    real_lookup, calls = csv_io._lookup, []

    def racy_lookup(session, documents, keys):  # the first look misses a contact "someone else" just added
        calls.append(documents)
        return [] if len(calls) == 1 else real_lookup(session, documents, keys)

    monkeypatch.setattr(csv_io, "_lookup", racy_lookup)
    report = import_contacts(session_factory, write(tmp_path, f"nome,cpf\nCliente 1 B,{cpf(1)}\n"))
    assert len(calls) == 2
    assert (report.created, report.updated) == (0, 1)
    [contact] = contacts(db)
    assert (contact.id, contact.name) == (existing.id, "Cliente 1 B")


def test_importing_the_same_file_twice_updates(db, session_factory, tmp_path):
    text = "\n".join(["nome,celular,cpf"] + [f"Cliente {i},11 98765-{i:04d},{cpf(i)}" for i in range(20)])
    path = write(tmp_path, text)
    first = import_contacts(session_factory, path)
    second = import_contacts(session_factory, path)
    assert (first.created, first.updated) == (20, 0)
    assert (second.created, second.updated, second.merged_duplicates) == (0, 20, [])
    assert count(db) == 20


# --- columns ----------------------------------------------------------------------------------


def test_portuguese_headers_case_and_accents(db, session_factory, tmp_path):
    text = (
        "NOME COMPLETO;Fone;WhatsApp;E-mail;Documento;Observações;Código interno;Não enviar SMS\n"
        f"Cliente 1;(11) 3456-7890;11 98765-4321;cliente1@exemplo.com;{cpf(1)};obs;ABC-1;sim\n"
    )
    report = import_contacts(session_factory, write(tmp_path, text))
    assert report.columns == {
        "NOME COMPLETO": "name", "Fone": "phone", "WhatsApp": "mobile", "E-mail": "email",
        "Documento": "document", "Observações": "notes", "Não enviar SMS": "opt_out_sms",
    }
    assert report.ignored_columns == ["Código interno"]
    [contact] = contacts(db)
    assert (contact.phone_e164, contact.mobile_e164, contact.notes, contact.opt_out_sms) == (
        "+551134567890", "+5511987654321", "obs", True)


def test_a_second_column_for_the_same_field_is_ignored(session_factory, tmp_path):
    text = "nome,celular,whatsapp\nCliente 1,11 98765-4321,11 98765-0000\n"
    report = import_contacts(session_factory, write(tmp_path, text))
    assert report.columns == {"nome": "name", "celular": "mobile"}
    assert report.ignored_columns == ["whatsapp"]


def test_mapping_takes_precedence_and_the_rest_is_recognised(db, session_factory, tmp_path):
    text = "Razão;Tel Residencial;Celular;Obs\nCliente 1;(11) 3456-7890;11 98765-4321;não importar\n"
    report = import_contacts(
        session_factory, write(tmp_path, text), mapping={"razao": "name", "Tel Residencial": "phone", "Obs": "-"}
    )
    assert report.columns == {"Razão": "name", "Tel Residencial": "phone", "Celular": "mobile"}
    assert report.ignored_columns == ["Obs"]
    [contact] = contacts(db)
    assert (contact.name, contact.phone_e164, contact.notes) == ("Cliente 1", "+551134567890", None)


@pytest.mark.parametrize(
    "mapping,fragment",
    [({"Tel": "fax"}, "unknown field 'fax'"), ({"Telefone 2": "phone"}, "no column 'Telefone 2'")],
)
def test_bad_mapping_is_an_error_before_any_row(db, session_factory, tmp_path, mapping, fragment):
    path = write(tmp_path, "Nome,Tel\nCliente 1,11 98765-4321\n")
    with pytest.raises(ImportFileError) as error:
        import_contacts(session_factory, path, mapping=mapping)
    assert fragment in error.value.message
    assert count(db) == 0


@pytest.mark.parametrize(
    "text",
    [
        "Razao,Numero,Endereco\nCliente 1,11 98765-4321,Rua A\n",  # no recognisable column at all
        "nome,email\nCliente 1,cliente1@exemplo.com\n",  # a name but nothing to identify the contact
        "nome;celular\n",  # fine... but read with the wrong delimiter below
    ],
)
def test_no_usable_columns_is_an_error_naming_what_was_found(db, session_factory, tmp_path, text):
    with pytest.raises(ImportFileError) as error:
        import_contacts(session_factory, write(tmp_path, text), delimiter="," if ";" in text else None)
    message = error.value.message
    assert message.startswith("no usable columns")
    assert text.splitlines()[0].split(",")[0] in message  # names the headers found
    assert "nome" in message and "telefone" in message and "cpf" in message  # and the ones expected
    assert count(db) == 0


def test_empty_file_is_an_error(session_factory, tmp_path):
    with pytest.raises(ImportFileError, match="empty"):
        import_contacts(session_factory, write(tmp_path, ""))


# --- email, as the API validates it --------------------------------------------------------------


@given(st.emails() | st.from_regex(r"[a-zA-Z0-9._+-]{1,12}@[a-zA-Z0-9.-]{1,12}\.[a-zA-Z]{1,4}", fullmatch=True))
def test_email_rules_are_the_apis(address):
    try:
        expected = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        assert clean_email(address) == expected
    except ValueError:
        assert expected is None


# --- size -------------------------------------------------------------------------------------


def test_hundred_thousand_rows(db, session_factory, tmp_path):
    total = 100_000
    path = tmp_path / "grande.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["Nome", "Telefone", "Celular", "CPF", "E-mail", "Não enviar SMS"])
        for i in range(total):
            if i % 1000 == 999:
                writer.writerow([f"Cliente {i}", "", "11 9876", "", "", ""])  # bad phone
            elif i % 1000 == 998:
                j = i - 501  # the same CPF as an earlier row (odd rows have one)
                writer.writerow([f"Cliente {j} B", "", "", cpf(j), "", "sim"])
            else:
                s = f"{(i * 7919) % 10**8:08d}"
                t = f"{(i // 10 * 7919) % 10**7:07d}"
                writer.writerow([
                    f"Cliente {i}", f"(21) 3{t[:3]}-{t[3:]}" if i % 10 == 0 else "",
                    f"(11) 9{s[:4]}-{s[4:]}" if i % 10 else "", cpf(i) if i % 2 else "",
                    f"cliente{i}@exemplo.com.br" if i % 3 == 0 else "", "não",
                ])
    started = time.perf_counter()
    report = import_contacts(session_factory, path)
    elapsed = time.perf_counter() - started
    assert report.rows_read == total
    assert report.rejected_count == 100
    assert len(report.merged_duplicates) == 100
    assert report.created == total - 200
    assert report.updated == 0
    assert count(db) == total - 200
    assert db.scalar(select(func.count()).select_from(Contact).where(Contact.opt_out_sms)) == 100
    print(f"\n100k rows on {db.get_bind().dialect.name}: {elapsed:.1f} s, {total / elapsed:,.0f} rows/s")


# --- command line -----------------------------------------------------------------------------


def run_cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CONTACT_CENTER_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    environment.pop("CONTACT_CENTER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "contact_center", *args],
        capture_output=True, text=True, env=environment, timeout=120, cwd=data_dir,
    )


def test_cli_import_reports_and_writes_rejections(tmp_path):
    text = (
        "Nome;Celular;CPF\r\n"
        f"João da Silva;(11) 98765-4321;{formatted(cpf(1))}\r\n"
        "Cliente 2;11 9876;\r\n"
        "Cliente 3;+55 21 99876-5432;\r\n"
        f"João da Silva B;;{cpf(1)}\r\n"
    )
    path = write(tmp_path, text, encoding="cp1252", name="clientes.csv")
    result = run_cli("contacts", "import", str(path), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    for label, number in (("read", 4), ("created", 2), ("updated", 0), ("merged duplicates", 1), ("rejected", 1)):
        assert re.search(rf"{label} \W+ {number}\b", out), (label, out)
    assert "'11 9876' is too short" in out and "cp1252" in out
    rejected = tmp_path / "clientes.rejected.csv"
    # The row as it was, in the file's delimiter, then line, field and reason: fixable and importable again.
    assert rejected.read_text(encoding="utf-8-sig").splitlines()[1].startswith("Cliente 2;11 9876;;3;celular;celular inválido")

    listed = run_cli("contacts", "list", "--search", "João", data_dir=tmp_path)
    assert "João da Silva B" in listed.stdout and "+5511987654321" in listed.stdout


def test_cli_import_with_map_and_explicit_rejections_path(tmp_path):
    path = write(tmp_path, "Cliente,Zap Zap\nCliente 1,11 98765-4321\n", name="c.csv")
    result = run_cli(
        "contacts", "import", str(path), "--map", "Cliente=name", "--map", "Zap Zap=mobile",
        "--delimiter", ",", "--rejections", str(tmp_path / "r.csv"), data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.csv").read_text(encoding="utf-8-sig").strip() == "Cliente,Zap Zap,linha,campo,motivo"


@pytest.mark.parametrize(
    "content,fragment",
    [(None, "cannot read"), ("Cliente,Numero\nA,1\n", "no usable columns"), ("", "empty")],
)
def test_cli_import_that_cannot_start_is_one_line_and_exit_1(tmp_path, content, fragment):
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_text(content)
    result = run_cli("contacts", "import", str(path), data_dir=tmp_path)
    assert result.returncode == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
