"""The contacts workspace over HTTP, on both databases: the list and its pages, a contact's page and
its edit form, opt-outs with who changed them, "Nova conversa", the CSV import and the export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from contact_center.channels.service import create_channel
from contact_center.contacts import service as contacts
from contact_center.contacts.models import Contact, ContactImport
from contact_center.inbox.models import Conversation
from contact_center.messaging.models import Message
from tests.contacts.test_csv_import import cpf, formatted
from tests.web.test_web_ui import XSS, csrf_of, login


@pytest.fixture
def ana(make_user):
    return make_user("ana", "agent")[0]


@pytest.fixture
def sofia(make_user):
    return make_user("sofia", "supervisor")[0]


@pytest.fixture
def maria(db):
    contact = contacts.create_contact(db, {"name": "Maria Souza", "mobile": "(11) 90000-0001", "document": cpf(1),
                                           "email": "maria@exemplo.com.br"})
    db.commit()
    return contact


def form_csrf(client, path: str) -> str:
    return csrf_of(client.get(path).text)


def test_the_list_searches_by_any_written_phone_cpf_and_name_and_pages_by_id(client, db, ana):
    for n in range(1, 121):
        contacts.create_contact(db, {"name": f"Cliente {n:03d}", "mobile": f"(21) 9{n:04d}-{n:04d}"})
    contacts.create_contact(db, {"name": XSS, "mobile": "(11) 90000-0001", "document": cpf(1)})
    db.commit()
    login(client, "ana")
    page = client.get("/contacts")
    assert page.status_code == 200 and 'id="nav-contacts"' in page.text
    assert "121 contatos" in page.text and XSS not in page.text and "&lt;img" in page.text
    ids = re.findall(r'id="contact-row-(\d+)"', page.text)
    assert len(ids) == 50 and ids == sorted(ids, key=int, reverse=True)  # newest first
    older = re.search(r'id="page-older" href="/contacts\?before=(\d+)"', page.text)
    second = client.get(f"/contacts?before={older.group(1)}").text
    second_ids = re.findall(r'id="contact-row-(\d+)"', second)
    assert len(second_ids) == 50 and int(second_ids[0]) < int(ids[-1])
    newer = re.search(r'id="page-newer" href="/contacts\?after=(\d+)"', second).group(1)
    assert re.findall(r'id="contact-row-(\d+)"', client.get(f"/contacts?after={newer}").text) == ids

    for written in ("5511900000001", "+55 11 90000-0001", "011 90000-0001", formatted(cpf(1)), "img src"):
        found = client.get("/contacts", params={"q": written}).text
        assert "1 contato" in found and "&lt;img src=x" in found, written
    nothing = client.get("/contacts", params={"q": "Ninguém Assim"}).text
    assert "Nenhum contato encontrado para «Ninguém Assim»." in nothing
    bad = client.get("/contacts?before=abc", headers={"Accept": "text/html"})
    assert bad.status_code == 422 and "esperado o número de um contato" in bad.text


def test_an_empty_list_says_what_to_do(client, ana, sofia):
    login(client, "ana")
    page = client.get("/contacts").text
    assert "Nenhum contato ainda" in page and 'href="/contacts/new"' in page
    assert 'href="/contacts/import"' not in page  # importing and exporting are for supervisors
    assert client.get("/contacts/import", headers={"Accept": "text/html"}).status_code == 403


def test_a_bad_edit_says_what_is_wrong_next_to_each_field_and_saves_nothing(client, db, ana, maria):
    login(client, "ana")
    before = (maria.name, maria.mobile, maria.email, maria.updated_at)
    token = form_csrf(client, f"/contacts/{maria.id}")
    answer = client.post(f"/contacts/{maria.id}", data={
        "csrf_token": token, "name": "Maria Souza Lima", "mobile": "11 9000", "phone": "", "email": "maria@",
        "document": "123.456.789-00", "notes": ""})
    assert answer.status_code == 422
    html = answer.text
    assert "Nada foi salvo: corrija os campos indicados." in html
    assert re.search(r'id="err-mobile"[^>]*>«11 9000» não é um celular válido', html)
    assert re.search(r'id="err-email"[^>]*>«maria@» não é um e-mail válido', html)
    assert re.search(r'id="err-document"[^>]*>«123.456.789-00» não é um CPF válido', html)
    assert 'value="Maria Souza Lima"' in html  # what was typed stays in the form
    db.expire_all()
    assert (db.get(Contact, maria.id).name, maria.mobile, maria.email, maria.updated_at) == before

    other = contacts.create_contact(db, {"name": "Pedro Alves", "mobile": "(11) 90000-0002"})
    db.commit()
    taken = client.post(f"/contacts/{other.id}", data={"csrf_token": token, "name": "Pedro Alves",
                                                       "mobile": "(11) 90000-0002", "document": cpf(1)})
    assert taken.status_code == 422 and f"já é de outro contato (Maria Souza, nº {maria.id})" in taken.text

    saved = client.post(f"/contacts/{maria.id}", data={"csrf_token": token, "name": "Maria Souza Lima",
                                                       "mobile": "(11) 90000-0001", "email": "maria@exemplo.com.br",
                                                       "document": cpf(1)}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/contacts/{maria.id}?saved=1"
    db.expire_all()
    assert db.get(Contact, maria.id).name == "Maria Souza Lima"
    assert "Contato salvo." in client.get(saved.headers["location"]).text


def test_a_new_contact_from_the_page(client, db, ana):
    login(client, "ana")
    token = form_csrf(client, "/contacts/new")
    refused = client.post("/contacts/new", data={"csrf_token": token, "name": "", "mobile": "abc"})
    assert refused.status_code == 422 and "informe o nome do contato" in refused.text
    assert db.scalar(select(func.count()).select_from(Contact)) == 0
    made = client.post("/contacts/new", data={"csrf_token": token, "name": "Ana Lima", "mobile": "(11) 90000-0009"},
                       follow_redirects=False)
    assert made.status_code == 303
    assert db.scalar(select(Contact.mobile_e164).where(Contact.name == "Ana Lima")) == "+5511900000009"


def test_opt_out_toggles_show_who_changed_them_and_when(client, db, ana, maria):
    login(client, "ana")
    token = form_csrf(client, f"/contacts/{maria.id}")
    assert "Nunca alterado" in client.get(f"/contacts/{maria.id}").text
    client.post(f"/contacts/{maria.id}/opt-out", data={"csrf_token": token, "flag": "opt_out_sms", "value": "on"})
    db.expire_all()
    assert db.get(Contact, maria.id).opt_out_sms is True
    page = client.get(f"/contacts/{maria.id}").text
    row = re.search(r'data-flag="opt_out_sms".*?</form>', page, re.S).group(0)
    assert "bloqueado" in row and re.search(r"Bloqueado por Ana em \d", row)
    client.post(f"/contacts/{maria.id}/opt-out", data={"csrf_token": token, "flag": "opt_out_sms", "value": "off"})
    row = re.search(r'data-flag="opt_out_sms".*?</form>', client.get(f"/contacts/{maria.id}").text, re.S).group(0)
    assert "Desbloqueado por Ana" in row
    bad = client.post(f"/contacts/{maria.id}/opt-out", data={"csrf_token": token, "flag": "name", "value": "on"},
                      headers={"Accept": "text/html"})
    assert bad.status_code == 422 and "bloqueio desconhecido" in bad.text


def test_nova_conversa_opens_the_conversation_in_the_inbox(client, db, ana, maria, sms):
    db.commit()
    login(client, "ana")
    token = form_csrf(client, f"/contacts/{maria.id}")
    empty = client.post(f"/contacts/{maria.id}/conversations",
                        data={"csrf_token": token, "channel_id": str(sms.id), "mode": "text", "body": " "})
    assert empty.status_code == 422 and "escreva a mensagem" in empty.text
    assert db.scalar(select(func.count()).select_from(Conversation)) == 0

    sent = client.post(f"/contacts/{maria.id}/conversations", follow_redirects=False,
                       data={"csrf_token": token, "channel_id": str(sms.id), "mode": "text", "body": "Olá, Maria!"})
    assert sent.status_code == 303
    conversation = db.scalar(select(Conversation).where(Conversation.contact_id == maria.id))
    assert sent.headers["location"] == f"/inbox/{conversation.id}"
    assert conversation.status == "assigned" and conversation.assignee_id == ana.id  # writing took it
    message = db.scalar(select(Message).where(Message.conversation_id == conversation.id))
    assert message.body == "Olá, Maria!" and message.author_id == ana.id

    page = client.get(f"/contacts/{maria.id}").text
    assert f'href="/inbox/{conversation.id}" data-conversation-id="{conversation.id}"' in page
    assert "Olá, Maria!" in page and "enviada por Ana" in page


def test_nova_conversa_refuses_an_opted_out_channel_and_free_text_outside_the_window(client, db, ana, maria, sms):
    whatsapp = create_channel(db, name="WhatsApp Cobrança", provider="whatsapp_sandbox",
                              credentials={"access_token": "token", "app_secret": "secret"},
                              settings={"phone_number_id": "1001", "waba_id": "2002", "base_url": "http://127.0.0.1:9"})
    contacts.opt_out(db, maria.id, "opt_out_sms", via="api")
    db.commit()
    login(client, "ana")
    token = form_csrf(client, f"/contacts/{maria.id}")
    page = client.get(f"/contacts/{maria.id}").text
    assert "Maria Souza pediu para não receber mensagens por SMS: o envio será recusado." in page
    assert "A janela de 24 horas está fechada" in page

    opted = client.post(f"/contacts/{maria.id}/conversations",
                        data={"csrf_token": token, "channel_id": str(sms.id), "mode": "text", "body": "Oi"})
    assert opted.status_code == 422
    assert "Maria Souza pediu para não receber mensagens por SMS: nada foi enviado" in opted.text
    closed = client.post(f"/contacts/{maria.id}/conversations",
                         data={"csrf_token": token, "channel_id": str(whatsapp.id), "mode": "text", "body": "Oi"})
    assert closed.status_code == 422 and "Janela fechada — envie um modelo aprovado" in closed.text
    no_template = client.post(f"/contacts/{maria.id}/conversations",
                              data={"csrf_token": token, "channel_id": str(whatsapp.id), "mode": "template"})
    assert no_template.status_code == 422 and "escolha um modelo aprovado deste canal" in no_template.text
    assert db.scalar(select(func.count()).select_from(Conversation)) == 0  # no refusal left a conversation
    assert db.scalar(select(func.count()).select_from(Message)) == 0


def _upload(client, name: str, content: bytes, token: str):
    return client.post("/contacts/import", data={"csrf_token": token},
                       files={"file": (name, content, "text/csv")}, follow_redirects=False)


def test_an_upload_that_is_not_a_csv_is_refused_and_nothing_kept(client, db, sofia, settings):
    login(client, "sofia")
    token = form_csrf(client, "/contacts/import")
    for name, content, words in (
        ("clientes.xlsx", b"PK\x03\x04...", "não é um arquivo CSV"),
        ("clientes.csv", b"PK\x03\x04rest", "é uma planilha do Excel (.xlsx)"),
        ("vazio.csv", b"", "está vazio"),
        ("cidades.csv", b"cidade;estado\nSantos;SP\n", "não tem as colunas necessárias"),
    ):
        refused = _upload(client, name, content, token)
        assert refused.status_code == 422 and words in refused.text, name
    assert db.scalar(select(func.count()).select_from(ContactImport)) == 0
    assert list((settings.data_dir / "imports").iterdir()) == []


def test_an_upload_over_the_size_limit_is_refused(client, db, sofia, settings):
    settings.contact_import_max_bytes = 1024
    login(client, "sofia")
    refused = _upload(client, "grande.csv", b"nome;celular\n" + b"Cliente;11 90000-0001\n" * 100,
                      form_csrf(client, "/contacts/import"))
    assert refused.status_code == 422 and "«grande.csv» tem mais de 1 KB, o limite para importar" in refused.text
    # Far over the limit, the request is refused by its declared size, before the body is read.
    huge = _upload(client, "enorme.csv", b"nome;celular\n" + b"Cliente;11 90000-0001\n" * 5000,
                   form_csrf(client, "/contacts/import"))
    assert huge.status_code == 422 and "o arquivo passa de 1 KB, o limite para importar" in huge.text
    assert list((settings.data_dir / "imports").iterdir()) == []
    assert "Até 1 KB." in client.get("/contacts/import").text


def test_import_mapping_dry_run_run_and_rejections(client, db, sofia, maria, settings):
    login(client, "sofia")
    token = form_csrf(client, "/contacts/import")
    text = ("Nome;Celular;CPF;Cidade\n"
            f"Maria Souza Lima;(11) 90000-0001;{formatted(cpf(1))};Santos\n"
            "Bruno Dias;(11) 90000-0002;;Campinas\n"
            "Sem Número;;;Recife\n")
    uploaded = _upload(client, "clientes.csv", text.encode("cp1252"), token)
    assert uploaded.status_code == 303
    page_url = uploaded.headers["location"]
    page = client.get(page_url).text
    assert "Lido como cp1252, separador «;»." in page
    assert re.search(r'name="map.Celular">.*?<option value="mobile" selected>', page, re.S)
    assert re.search(r'name="map.Cidade">\s*<option value="-">', page)
    assert "+5511900000002" not in page and "(11) 90000-0002" in page  # the preview shows the rows as stored
    assert "Será rejeitada: a linha não tem telefone, celular nem CPF" in page

    # The mapping step: Cidade into the notes; two columns on one field is refused, in Portuguese.
    import_id = int(page_url.rsplit("/", 1)[1])
    both = client.post(f"{page_url}/mapping", data={"csrf_token": token, "map.Nome": "name", "map.Celular": "mobile",
                                                    "map.CPF": "document", "map.Cidade": "mobile"})
    assert both.status_code == 422 and "estão ambas ligadas a celular" in both.text
    client.post(f"{page_url}/mapping", data={"csrf_token": token, "map.Nome": "name", "map.Celular": "mobile",
                                             "map.CPF": "document", "map.Cidade": "notes"})
    assert db.get(ContactImport, import_id).mapping["Cidade"] == "notes"

    # The dry run (a job; immediate in tests) writes nothing and says what would change.
    client.post(f"{page_url}/dry-run", data={"csrf_token": token})
    db.expire_all()
    assert db.get(ContactImport, import_id).status == "checked"
    assert db.get(Contact, maria.id).name == "Maria Souza"
    page = client.get(page_url).text
    assert re.search(r'data-count="created">1<', page) and re.search(r'data-count="updated">1<', page)
    assert re.search(r'data-count="rejected">1<', page)
    renamed = re.search(r'<tr data-contact-id="%d" data-field="name" class="renamed">(.*?)</tr>' % maria.id, page, re.S)
    assert renamed and "Maria Souza" in renamed.group(1) and "Maria Souza Lima" in renamed.group(1)
    assert 'id="run-import"' in page

    client.post(f"{page_url}/run", data={"csrf_token": token})
    db.expire_all()
    done = db.get(ContactImport, import_id)
    assert done.status == "done" and done.rows_done == done.rows_total == 3
    assert db.get(Contact, maria.id).name == "Maria Souza Lima" and db.get(Contact, maria.id).notes == "Santos"
    page = client.get(page_url).text
    assert "1 criados, 1 atualizados, 1 rejeitadas." in page
    assert client.get(f"{page_url}/status").json() == {"status": "done", "rows_done": 3, "rows_total": 3}

    rejections = client.get(f"{page_url}/rejections.csv")
    assert rejections.status_code == 200 and "clientes-rejeitadas.csv" in rejections.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(rejections.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Nome", "Celular", "CPF", "Cidade", "linha", "campo", "motivo"]
    assert rows[1][:6] == ["Sem Número", "", "", "Recife", "4", "telefone/celular/CPF"]
    again = client.post(f"{page_url}/run", data={"csrf_token": token})
    assert again.status_code == 409 and "está concluída" in again.text


def test_export_takes_the_list_filter(client, db, sofia, maria):
    contacts.create_contact(db, {"name": "Pedro Alves", "mobile": "(21) 90000-0002"})
    db.commit()
    login(client, "sofia")
    page = client.get("/contacts", params={"q": "Maria"}).text
    assert 'href="/contacts/export.csv?q=Maria"' in page
    exported = client.get("/contacts/export.csv", params={"q": "Maria"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == ["Maria Souza"]
    everyone = list(csv.DictReader(io.StringIO(client.get("/contacts/export.csv").content.decode("utf-8-sig"))))
    assert sorted(r["name"] for r in everyone) == ["Maria Souza", "Pedro Alves"]


# --- tags and the business's fields on the contacts pages -----------------------------------------

@pytest.fixture
def debts(db):
    from contact_center.contacts import fields

    fields.add_field(db, key="vencimento", label="Vencimento", type="date")
    fields.add_field(db, key="valor_parcela", label="Valor da parcela", type="money")
    made = {}
    for n, (due, amount, tag) in enumerate([("05/11/2025", "1.200,00", "inadimplente"), ("20/11/2025", "80,00", "acordo"),
                                            ("10/12/2025", "2.500,00", "inadimplente")], start=1):
        made[n] = contacts.create_contact(db, {"name": f"Devedor {n}", "mobile": f"(31) 90000-000{n}", "tags": [tag],
                                               "fields": {"vencimento": due, "valor_parcela": amount}})
    db.commit()
    return made


def test_the_list_filters_by_tags_and_by_fields_and_the_export_follows(client, db, sofia, debts):
    login(client, "sofia")
    tagged = client.get("/contacts", params={"tags": "Inadimplente"}).text
    assert "Devedor 1" in tagged and "Devedor 3" in tagged and "Devedor 2" not in tagged
    november = {"field.vencimento_from": "01/11/2025", "field.vencimento_to": "30/11/2025",
                "field.valor_parcela_from": "1.000,00"}
    page = client.get("/contacts", params=november).text
    assert "Devedor 1" in page and "Devedor 2" not in page and "Devedor 3" not in page
    assert 'value="01/11/2025"' in page  # the filter stays in the form
    both = client.get("/contacts", params={**november, "tags": "acordo"}).text
    assert "Nenhum contato encontrado" in both
    exported = client.get("/contacts/export.csv", params={"tag": "inadimplente", **november})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [(r["name"], r["vencimento"], r["tags"]) for r in rows] == [("Devedor 1", "05/11/2025", "inadimplente")]
    bad = client.get("/contacts", params={"field.vencimento_from": "ontem"}, headers={"Accept": "text/html"})
    assert bad.status_code == 422


def test_the_contact_page_edits_tags_and_fields_and_refuses_a_bad_value(client, db, sofia, debts):
    from contact_center.contacts import fields

    login(client, "sofia")
    first = debts[1]
    token = form_csrf(client, f"/contacts/{first.id}")
    page = client.get(f"/contacts/{first.id}").text
    assert 'name="fields.valor_parcela" value="1.200,00"' in page and 'name="tags" value="inadimplente"' in page
    base = {"csrf_token": token, "name": "Devedor 1", "mobile": "(31) 90000-0001"}
    refused = client.post(f"/contacts/{first.id}", data={**base, "tags": "inadimplente, acordo 2026",
                                                          "fields.valor_parcela": "12,345", "fields.vencimento": ""})
    assert refused.status_code == 422
    assert re.search(r'id="err-field-valor_parcela"[^>]*>[^<]*valor_parcela', refused.text)
    db.expire_all()
    assert db.get(Contact, first.id).tags == ["inadimplente"]  # nothing saved
    saved = client.post(f"/contacts/{first.id}", data={**base, "tags": "inadimplente, acordo 2026",
                                                        "fields.valor_parcela": "1.350,50", "fields.vencimento": ""},
                        follow_redirects=False)
    assert saved.status_code == 303
    db.expire_all()
    contact = db.get(Contact, first.id)
    assert contact.tags == ["inadimplente", "acordo 2026"]
    assert {k: str(v) for k, v in fields.values_for(db, [first.id])[first.id].items()} == {"valor_parcela": "1350.50"}


def test_nova_conversa_does_not_write_in_another_agents_conversation(client, db, ana, make_user, maria, sms):
    bruno = make_user("bruno", "agent")[0]
    login(client, "bruno")  # Bruno writes first: the conversation is his
    token = form_csrf(client, f"/contacts/{maria.id}")
    first = client.post(f"/contacts/{maria.id}/conversations", follow_redirects=False,
                        data={"csrf_token": token, "channel_id": str(sms.id), "mode": "text", "body": "Sou o Bruno"})
    assert first.status_code == 303
    client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    login(client, "ana")
    token = form_csrf(client, f"/contacts/{maria.id}")
    refused = client.post(f"/contacts/{maria.id}/conversations", headers={"Accept": "text/html"},
                          data={"csrf_token": token, "channel_id": str(sms.id), "mode": "text", "body": "Sou a Ana"})
    assert refused.status_code in (403, 409, 422), refused.status_code
    conversation = db.scalar(select(Conversation).where(Conversation.contact_id == maria.id))
    db.refresh(conversation)
    assert conversation.assignee_id == bruno.id
    assert [m.body for m in db.scalars(select(Message).where(Message.conversation_id == conversation.id))] == [
        "Sou o Bruno"]
