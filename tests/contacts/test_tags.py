"""Tags on contacts through the API: matched ignoring case and accents, shown as first written."""

from __future__ import annotations

import pytest


def create(client, headers, name, mobile, tags):
    response = client.post("/api/contacts", json={"name": name, "mobile": mobile, "tags": tags}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_tags_are_stored_shown_as_first_written_and_filtered(client, agent_headers):
    h = agent_headers
    ana = create(client, h, "Ana", "11 90000-0001", ["Inadimplência", " VIP ", "inadimplencia"])
    assert ana["tags"] == ["Inadimplência", "VIP"]  # one tag per key, trimmed
    bia = create(client, h, "Bia", "11 90000-0002", ["INADIMPLENCIA"])
    assert bia["tags"] == ["Inadimplência"]  # as first written anywhere
    create(client, h, "Caio", "11 90000-0003", [])

    def names(*tags):
        page = client.get("/api/contacts", params={"tag": list(tags)}, headers=h).json()
        return [c["name"] for c in page["items"]], page["total"]

    assert names("inadimplência") == (["Ana", "Bia"], 2)
    assert names("Inadimplencia", "vip") == (["Ana"], 1)  # several: contacts with all of them
    assert names("nenhuma") == ([], 0)
    assert client.get("/api/contacts/tags", headers=h).json() == [
        {"name": "Inadimplência", "contacts": 2}, {"name": "VIP", "contacts": 1}]


def test_patch_replaces_the_tags_and_null_clears_them(client, agent_headers):
    h = agent_headers
    ana = create(client, h, "Ana", "11 90000-0001", ["VIP", "Acordo"])
    changed = client.patch(f"/api/contacts/{ana['id']}", json={"tags": ["acordo", "Novo"]}, headers=h)
    assert changed.status_code == 200 and changed.json()["tags"] == ["Acordo", "Novo"]
    untouched = client.patch(f"/api/contacts/{ana['id']}", json={"notes": "ligar à tarde"}, headers=h)
    assert untouched.json()["tags"] == ["Acordo", "Novo"]
    cleared = client.patch(f"/api/contacts/{ana['id']}", json={"tags": None}, headers=h)
    assert cleared.json()["tags"] == []


@pytest.mark.parametrize("tag,fragment", [
    ("", "vazia"), ("a" * 51, "máximo é 50"), ("VIP; Ouro", "vírgula"), ("linha\u0000", "NUL"),
    ("sino\u0007", "controle"),
])
def test_a_bad_tag_is_refused_in_portuguese_and_changes_nothing(client, agent_headers, tag, fragment):
    h = agent_headers
    ana = create(client, h, "Ana", "11 90000-0001", ["VIP"])
    response = client.patch(f"/api/contacts/{ana['id']}", json={"name": "Ana Paula", "tags": ["Ouro", tag]}, headers=h)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["error"]["message"]
    again = client.get(f"/api/contacts/{ana['id']}", headers=h).json()
    assert again["name"] == "Ana" and again["tags"] == ["VIP"]
    refused = client.post("/api/contacts", json={"name": "Bia", "mobile": "11 90000-0002", "tags": [tag]}, headers=h)
    assert refused.status_code == 422
    assert client.get("/api/contacts", headers=h).json()["total"] == 1


def test_a_phone_another_contact_has_is_a_409_naming_it_unless_created_anyway(client, agent_headers):
    h = agent_headers
    maria = create(client, h, "Maria Souza", "(48) 99191-0234", [])
    twin = client.post("/api/contacts", json={"name": "Maria S.", "phone": "554891910234"}, headers=h)
    assert twin.status_code == 409, twin.text
    error = twin.json()["error"]
    assert error["code"] == "duplicate_contact" and error["contact_id"] == maria["id"]
    assert error["field"] == "phone" and "Maria Souza" in error["message"] and "já é do contato" in error["message"]
    assert client.get("/api/contacts", headers=h).json()["total"] == 1

    anyway = client.post("/api/contacts", json={"name": "Marcos Souza", "phone": "554891910234",
                                                "create_anyway": True}, headers=h)
    assert anyway.status_code == 201, anyway.text


def test_a_cpf_another_contact_has_is_refused_even_when_created_anyway(client, agent_headers):
    h = agent_headers
    first = client.post("/api/contacts", json={"name": "João", "document": "529.982.247-25"}, headers=h).json()
    again = client.post("/api/contacts", json={"name": "João Lima", "document": "52998224725", "create_anyway": True},
                        headers=h)
    assert again.status_code == 409
    error = again.json()["error"]
    assert (error["code"], error["field"], error["contact_id"]) == ("duplicate_contact", "document", first["id"])
    assert "529.982.247-25" in error["message"] and "João" in error["message"]
    assert client.get("/api/contacts", headers=h).json()["total"] == 1


# --- CSV files ---------------------------------------------------------------------------------------

def test_import_adds_the_tags_column_and_export_writes_it_back(db, session_factory, tmp_path):
    import csv
    import io

    from sqlalchemy import select

    from contact_center.contacts.csv_io import export_contacts, import_contacts
    from contact_center.contacts.models import Contact
    from contact_center.contacts.service import create_contact

    known = create_contact(db, {"name": "Ana", "mobile": "11 90000-0001", "tags": ["VIP"]})
    db.commit()
    source = tmp_path / "clientes.csv"
    source.write_text("nome;celular;etiquetas\n"
                      "Ana;11 90000-0001;Inadimplente, vip\n"  # an existing contact: tags added, VIP stays
                      "Bia;11 90000-0002;\"Acordo 2026; INADIMPLENTE\"\n"  # a new contact; ';' inside quotes
                      "Caio;11 90000-0003;\n"
                      "Davi;11 90000-0004;ok;a,\n", encoding="utf-8")  # a cell of ';' not in quotes
    report = import_contacts(session_factory, source, batch_size=2)
    assert (report.created, report.updated, report.rejected_count) == (2, 1, 1)
    assert report.rejected[0].line == 5 and report.rejected[0].field == "row"

    db.expire_all()
    by_name = {c.name: c.tags for c in db.scalars(select(Contact))}
    assert by_name == {"Ana": ["VIP", "Inadimplente"], "Bia": ["Acordo 2026", "Inadimplente"], "Caio": []}
    assert db.get(Contact, known.id).tags == ["VIP", "Inadimplente"]

    out = io.StringIO()
    export_contacts(db, out)
    exported = {row["name"]: row["tags"] for row in csv.DictReader(io.StringIO(out.getvalue()))}
    assert exported == {"Ana": "VIP; Inadimplente", "Bia": "Acordo 2026; Inadimplente", "Caio": ""}


def test_a_bad_tag_in_a_file_rejects_its_row_with_the_reason(db, session_factory, tmp_path):
    from contact_center.contacts.csv_io import import_contacts

    source = tmp_path / "clientes.csv"
    source.write_text("nome,celular,tags\nAna,11 90000-0001,\"VIP," + "x" * 60 + "\"\n", encoding="utf-8")
    report = import_contacts(session_factory, source)
    assert report.rejected_count == 1 and report.created == 0
    assert report.rejected[0].field == "tags" and "máximo é 50" in report.rejected[0].reason


def test_a_contact_made_from_a_conversation_is_refused_when_the_number_is_a_contacts(client, agent_headers, db, sms,
                                                                                      customer_writes):
    from contact_center.contacts.service import create_contact

    conversation = customer_writes(sms, "+55 11 90000-0001")
    db.commit()
    # A contact with the number, added after the conversation began (so it is not linked yet).
    maria = create_contact(db, {"name": "Maria Souza", "phone": "11 90000-0001"})
    db.commit()
    url = f"/api/conversations/{conversation.id}/contact/new"
    refused = client.post(url, json={"name": "Maria"}, headers=agent_headers)
    assert refused.status_code == 409 and refused.json()["error"]["contact_id"] == maria.id
    made = client.post(url, json={"name": "Marcos", "create_anyway": True}, headers=agent_headers)
    assert made.status_code == 201 and made.json()["mobile_e164"] == "+5511900000001"
